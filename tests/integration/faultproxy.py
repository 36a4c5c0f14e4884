"""A small fault-injecting HTTP proxy to put in front of a real `mlflow server`.

Rules match requests by method and path substring and fire a given number of times:

* ``fail_before``: answer 5xx without forwarding (the server never saw it);
* ``fail_after``:  forward, let the server commit, then answer 5xx (the worst case: the
  client believes it failed, the server did it);
* ``stop()`` / ``start()``: the listener goes away entirely (connection refused) and comes
  back on the same port.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass
class Rule:
    method: str
    path: str
    mode: str  # fail_before | fail_after
    times: int = 1
    status: int = 503
    body: str = ""  # also match a substring of the request body (e.g. '"alias": "production"')
    fired: int = 0


@dataclass
class FaultProxy:
    upstream: str
    port: int
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, method: str, path: str, mode: str, times: int = 1, status: int = 503, body: str = "") -> Rule:
        rule = Rule(method, path, mode, times, status, body)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _match(self, method: str, path: str, body: bytes = b"") -> Rule | None:
        with self._lock:
            for r in self.rules:
                if r.method == method and r.path in path and r.fired < r.times and r.body.encode() in body:
                    r.fired += 1
                    return r
        return None

    def start(self) -> FaultProxy:
        proxy = self
        up = urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # noqa: ARG002 - quiet
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rule = proxy._match(self.command, self.path, body)
                if rule is not None and rule.mode == "fail_before":
                    return self._reply(rule.status, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected"}', rule)
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if rule is not None and rule.mode == "fail_after":
                    return self._reply(rule.status, b'{"error_code": "INTERNAL_ERROR", "message": "injected after commit"}', rule)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")  # no keep-alive: stop() must refuse the very next request
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True
                proxy.log.append((self.command, self.path, resp.status))

            def _reply(self, status: int, data: bytes, rule: Rule) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True
                proxy.log.append((self.command, self.path, -status if rule.mode == "fail_after" else status))

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
