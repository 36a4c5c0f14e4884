"""Answer the waiting approval through Airflow's REST API, as a reviewer's script would.

The decision is recorded by Airflow with the authenticated user as
``responded_by``; Airflow refuses (403) users the approval task is not assigned
to. The operator then writes the decision onto the MLflow model version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelops import settings

APPROVAL_TASK_ID = "approve_production"


class ApprovalError(RuntimeError):
    """The approval could not be answered; the message says why (HTTP status and Airflow's detail)."""


def _password_for(user: str) -> str | None:
    """Embedded default only: the SimpleAuthManager's generated local-dev passwords file."""
    path = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or str(
        Path(os.environ.get("AIRFLOW_HOME", settings.home() / "airflow")) / "simple_auth_manager_passwords.json.generated")
    try:
        return json.loads(Path(path).read_text()).get(user)
    except (OSError, ValueError):
        return None


@dataclass
class AirflowApi:
    """Bearer-token client; ``http`` is ``requests`` or anything with its request API (e.g. a test client)."""

    base_url: str
    token: str
    http: Any = None

    @classmethod
    def login(cls, base_url: str | None = None, user: str | None = None, password: str | None = None,
              token: str | None = None, session: Any = None) -> AirflowApi:
        import requests

        base = (base_url or settings.airflow_api_url()).rstrip("/")
        token = token or os.environ.get("MODELOPS_AIRFLOW_TOKEN")
        if token:
            return cls(base, token, session)
        user = user or os.environ.get("MODELOPS_AIRFLOW_USER") or "admin"
        password = password or os.environ.get("MODELOPS_AIRFLOW_PASSWORD") or _password_for(user)
        if not password:
            raise ApprovalError(f"no password for Airflow user {user!r}: set MODELOPS_AIRFLOW_PASSWORD or pass --password")
        try:
            r = (session or requests).post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=30)
        except requests.RequestException as exc:
            raise ApprovalError(f"cannot reach the Airflow API at {base}: {exc}") from None
        if r.status_code not in (200, 201):
            raise ApprovalError(f"login as {user!r} at {base} failed: HTTP {r.status_code} {r.text[:200]}")
        return cls(base, r.json()["access_token"], session)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        import requests

        try:
            r = (self.http or requests).request(method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kw)
        except requests.RequestException as exc:
            raise ApprovalError(f"cannot reach the Airflow API at {self.base_url}: {exc}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApprovalError(f"{method} {path}: HTTP {r.status_code}: {detail}")
        return r.json() if r.content else None

    def pending(self, dag_id: str = "~", task_id: str = APPROVAL_TASK_ID) -> list[dict[str, Any]]:
        """Approvals waiting for an answer (newest first)."""
        data = self.request("GET", f"/api/v2/dags/{quote(dag_id, safe='~')}/dagRuns/~/hitlDetails",
                         params={"response_received": "false", "task_id": task_id, "order_by": "-created_at", "limit": 100})
        return list(data.get("hitl_details", []))

    def respond(self, dag_id: str, run_id: str, approve: bool, comment: str = "", task_id: str = APPROVAL_TASK_ID) -> dict[str, Any]:
        body = {"chosen_options": ["Approve" if approve else "Reject"], "params_input": {"comment": comment}}
        return self.request("PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                                  f"{quote(task_id, safe='')}/-1/hitlDetails", json=body)


def find_waiting(api: AirflowApi, model_name: str, version: str | None = None) -> dict[str, Any]:
    """The waiting approval of ``model_name`` (and ``version``); clear error if none or ambiguous."""
    items = api.pending()
    want = f"Promote {model_name} v"
    mine = [i for i in items if str(i.get("subject", "")).startswith(want)]
    if version is not None:
        mine = [i for i in mine if str(i.get("subject", "")).startswith(f"{want}{version} ")]
    if not mine:
        raise ApprovalError(f"no approval is waiting for {model_name}{f' v{version}' if version else ''}")
    if len(mine) > 1 and version is None:
        subjects = ", ".join(i.get("subject", "?") for i in mine)
        raise ApprovalError(f"several approvals are waiting ({subjects}); pass --version")
    return mine[0]


def answer(model_name: str, approve: bool, comment: str, version: str | None = None, **login: Any) -> dict[str, Any]:
    api = AirflowApi.login(**login)
    item = find_waiting(api, model_name, version)
    ti = item.get("task_instance", {})
    dag_id, run_id = ti.get("dag_id"), ti.get("dag_run_id") or ti.get("run_id")
    resp = api.respond(dag_id, run_id, approve, comment)
    return {"dag_id": dag_id, "run_id": run_id, "subject": item.get("subject"), **(resp or {})}
