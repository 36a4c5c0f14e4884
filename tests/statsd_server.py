"""A StatsD (UDP) listener on loopback, and Airflow's metrics pointed at it for the tests' in-process tasks.

A real task process initializes ``airflow.sdk.observability.stats`` from ``[metrics]`` when it
starts (``task_runner.main``); ``dag.test()`` runs the tasks in the test's own process, so
:func:`configure_airflow_metrics` does that initialization after setting the variables.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import threading
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<name>[^:]+):(?P<value>-?[0-9.eE+-]+)\|(?P<kind>[a-z]+)")


@dataclass(frozen=True)
class Sample:
    name: str  # without tags
    tags: dict[str, str]
    value: float
    kind: str  # g, c, ms


class StatsdListener:
    """Collects every StatsD line sent to ``127.0.0.1:<port>`` (a free port) until closed."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sock.close()

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            if sel.select(timeout=0.2):
                self.drain()
        sel.close()

    def drain(self) -> list[str]:
        """Read what is queued now. Loopback UDP is in the socket's buffer once ``sendto`` returned,
        so draining after the sender finished sees every datagram it sent."""
        with self._lock:
            while True:
                try:
                    data = self.sock.recv(65535)
                except (BlockingIOError, OSError):
                    break
                self.lines.extend(ln for ln in data.decode("utf-8", "replace").splitlines() if ln)
            return list(self.lines)

    def samples(self, prefix: str = "") -> list[Sample]:
        out = []
        for line in self.drain():
            m = _LINE.match(line)
            if not m:
                continue
            name, *tag_parts = m.group("name").split(",")
            if not name.startswith(prefix):
                continue
            tags = dict(p.split("=", 1) for p in tag_parts if "=" in p)
            out.append(Sample(name, tags, float(m.group("value")), m.group("kind")))
        return out


def configure_airflow_metrics(monkeypatch, **settings: object) -> None:
    """Set ``AIRFLOW__METRICS__*`` and initialize the SDK's stats the way a task process does at start."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    for key in [k for k in os.environ if k.startswith("AIRFLOW__METRICS__")]:
        monkeypatch.delenv(key)
    for key, value in settings.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key.upper()}", str(value))
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))


def reset_airflow_metrics() -> None:
    """Back to whatever the (restored) environment says: no backend in the test session."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))
