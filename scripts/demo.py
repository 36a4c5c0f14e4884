"""`make demo`: the whole lifecycle on the embedded default, through Airflow itself.

v1: retrain_weekly -> staging -> approved by a reviewer (REST API) -> production
drift_daily on a normal day (no drift), then on a drifted day (drift -> Asset event)
v2: retrain_weekly for the drift -> staging -> approved -> production, v1 archived

Airflow runs the DAGs with `airflow dags test`; a short-lived `airflow api-server`
on the same SQLite database is what a reviewer (here: `python -m modelops approve`)
answers the approval through. All state lives under $MODELOPS_HOME (.demo/).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
AIRFLOW = str(Path(PY).with_name("airflow"))

V1_DATE = os.environ.get("DEMO_V1_DATE", "2025-06-01")
NORMAL_DAY = os.environ.get("DEMO_NORMAL_DAY", "2025-06-11")
DRIFT_DAY = os.environ.get("DEMO_DRIFT_DAY", "2025-11-26")
DRIFT_START = os.environ.get("DEMO_DRIFT_START", "2025-07-01")
DATA_START, DATA_END = "2023-01-01", "2026-01-01"


def say(msg: str) -> None:
    print(f"\n\033[1m==> {msg}\033[0m", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def modelops(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "modelops", *args], cwd=ROOT, check=check, text=True, capture_output=True)


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"the Airflow API server did not answer at {url} within {timeout:.0f}s (see {api_log()})")


def api_server_command() -> list[str]:
    """The short-lived api-server: loopback only unless AIRFLOW__API__HOST says otherwise."""
    return [AIRFLOW, "api-server", "--host", os.environ.get("AIRFLOW__API__HOST") or "127.0.0.1",
            "--port", os.environ.get("AIRFLOW__API__PORT", "8080")]


def api_log() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / "api-server.log"


def dag_test(dag_id: str, date: str, conf: dict | None = None, approve: tuple[str, str] | None = None) -> None:
    """`airflow dags test`; when the run reaches the approval, answer it as a reviewer would."""
    cmd = [AIRFLOW, "dags", "test", dag_id, date]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    log = Path(os.environ["AIRFLOW_HOME"]) / f"dags-test-{dag_id}-{date}.log"
    print("$ " + " ".join(cmd) + f"   (log: {log})", flush=True)
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        answered = approve is None
        while proc.poll() is None:
            if not answered:
                user, comment = approve
                r = modelops("approve", "--user", user, "--comment", comment, check=False)
                if r.returncode == 0:
                    print("   reviewer: " + r.stdout.strip(), flush=True)
                    answered = True
                elif "no approval is waiting" not in r.stderr:
                    print("   " + r.stderr.strip(), flush=True)
            time.sleep(3)
    text = log.read_text()
    failed = [ln for ln in text.splitlines() if "Task failed" in ln or "state=failed" in ln.lower()]
    if proc.returncode != 0 or "DagRun Finished" in text and "state=failed" in text:
        print(text[-4000:])
        raise SystemExit(f"{dag_id} {date} failed (exit {proc.returncode}); full log: {log}")
    summary = [ln for ln in text.splitlines() if "DagRun Finished" in ln]
    print("   " + (summary[-1].strip()[:200] if summary else "run finished"), flush=True)
    if failed:
        print("   (task failures were logged; see the log)")


def main() -> int:
    home = Path(os.environ["MODELOPS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    say("Airflow metadata database (SQLite) and the training pool")
    run([AIRFLOW, "db", "migrate"], stdout=subprocess.DEVNULL)
    run([AIRFLOW, "pools", "set", os.environ.get("MODELOPS_TRAINING_POOL", "modelops_training"), "2",
         "model training tasks of airflow-modelops"], stdout=subprocess.DEVNULL)

    say(f"Sample data: daily store sales {DATA_START} .. {DATA_END}, drift injected from {DRIFT_START}")
    run([PY, "-m", "modelops", "generate-data", "--start", DATA_START, "--end", DATA_END, "--drift-start", DRIFT_START])

    say("Short-lived Airflow API server (the approval is answered through its REST API)")
    api = subprocess.Popen(api_server_command(), cwd=ROOT,
                           stdout=api_log().open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"{os.environ['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health")

        say(f"retrain_weekly for {V1_DATE}: validate -> features -> train -> ensemble -> gate -> approval -> promote")
        dag_test("retrain_weekly", V1_DATE, approve=("reviewer", "v1 looks good: RMSPE under threshold"))
        print(modelops("status").stdout)

        say(f"drift_daily on a normal day ({NORMAL_DAY})")
        dag_test("drift_daily", NORMAL_DAY)
        print("   " + modelops("status").stdout.splitlines()[-1])

        say("batch_predict_daily on the same day: scores it with @production; the actuals are there, so it is judged")
        dag_test("batch_predict_daily", NORMAL_DAY)
        _print_monitoring()

        # retrain_weekly must be unpaused for the drift Asset event to queue a run (new DAGs start paused)
        run([AIRFLOW, "dags", "unpause", "retrain_weekly"], stdout=subprocess.DEVNULL)
        say(f"drift_daily on a drifted day ({DRIFT_DAY})")
        dag_test("drift_daily", DRIFT_DAY)
        print("   " + modelops("status").stdout.splitlines()[-1])
        queued = _queued_events("retrain_weekly")
        for q in queued:
            print(f"   retrain_weekly is queued by the drift Asset (asset id {q.get('asset_id')}, event at {q.get('created_at')}): "
                  "a running scheduler starts it now")
        if not queued:
            raise SystemExit("the drift Asset event did not queue retrain_weekly")

        say("batch_predict_daily on the drifted day: v1 on drifted data is worse than its baseline -> degradation")
        dag_test("batch_predict_daily", DRIFT_DAY)
        _print_monitoring()

        say("That retrain, run through `airflow dags test` over the same window (the scheduler would start it from the event)")
        end = _next_day(DRIFT_DAY)
        dag_test("retrain_weekly", end, conf={"training_end": end, "note": f"drift detected on {DRIFT_DAY}"},
                 approve=("reviewer", "v2 retrained on drifted data beats v1"))
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        try:
            api.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(api.pid, signal.SIGKILL)

    say("Status of every model version")
    print(modelops("status").stdout)
    report = home / "monitoring_report.html"
    modelops("report", "--start", _prev_day(NORMAL_DAY), "--end", DRIFT_DAY, "--out", str(report))
    print(f"Monitoring report (drift history, PSI heat map, predicted vs actual, metric over time): {report}")
    print(f"""
Look around:
  make airflow-ui    # Airflow UI on {os.environ['AIRFLOW__API__BASE_URL']} (users in {os.environ.get('AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE')})
  make mlflow-ui     # MLflow UI on http://127.0.0.1:5000 (runs, model registry, drift reports)
  make status        # this table again; make status-json for the JSON
""")
    return 0


def _queued_events(dag_id: str) -> list[dict]:
    """What the REST API says is waiting to schedule ``dag_id`` (asset events not yet consumed)."""
    from modelops.governance.approvals import AirflowApi

    api = AirflowApi.login(user="admin")
    return list(api.request("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents").get("queued_events", []))


def _print_monitoring() -> None:
    """The status lines from the live-performance summary down."""
    lines = modelops("status").stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("live ")), len(lines))
    for line in lines[start:]:
        print("   " + line)


def _prev_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _next_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


if __name__ == "__main__":
    sys.exit(main())
