"""``python -m modelops``: the package's command line.

    generate-data   write the demo's date-partitioned sample data
    status          every version: aliases, lifecycle, metric, approval, lineage (--json)
    approve/reject  answer the waiting approval through Airflow's REST API
    rollback        production back to the version the current one replaced
    db-migrate      create/upgrade the package's tables (SQLite default or $MODELOPS_DB_URL)
    report          monitoring report (metric over time, drift, PSI heat map, ...) for a date range -> HTML
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def _cfg(args: argparse.Namespace):
    from modelops.config import load_config

    return load_config(args.config)


def cmd_generate(args: argparse.Namespace) -> int:
    from modelops.data.sample_data import generate_for_config, write_dataset

    cfg = _cfg(args)
    if args.if_missing:
        from modelops.data.sources import DataError, list_partitions, match_files

        # An init job runs this on every `docker compose up`: never overwrite data that is there.
        try:
            found = (match_files(cfg) if cfg.data.layout == "files"
                     else list_partitions(cfg, date.fromisoformat(args.start), date.fromisoformat(args.end)))
        except DataError:  # the data root does not exist yet
            found = []
        if found:
            print(f"{len(found)} {'files' if cfg.data.layout == 'files' else 'daily partitions'} already under {cfg.data.path}: "
                  "nothing written (--if-missing)")
            return 0
    kw = {}
    if args.entities:
        kw["n_entities"] = args.entities
    df = generate_for_config(cfg, date.fromisoformat(args.start), date.fromisoformat(args.end), seed=args.seed,
                             drift_start=date.fromisoformat(args.drift_start) if args.drift_start else None, **kw)
    n = write_dataset(df, cfg)
    print(f"wrote {len(df):,} rows in {n} {'files' if cfg.data.layout == 'files' else 'daily partitions'} under {cfg.data.path}"
          + (f" (drift from {args.drift_start})" if args.drift_start else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from modelops.governance import status

    data = status.collect(_cfg(args))
    print(json.dumps(data, indent=2, default=str) if args.json else status.render_table(data))
    return 0


def cmd_answer(args: argparse.Namespace, approve: bool) -> int:
    from modelops.governance.approvals import answer

    cfg = _cfg(args)
    out = answer(cfg.model_name, approve, args.comment or "", args.version, base_url=args.api_url, user=args.user,
                 password=args.password)
    who = (out.get("responded_by") or {}).get("name") or args.user
    print(f"{'approved' if approve else 'rejected'}: {out.get('subject')} (run {out['run_id']}) as {who}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from modelops.governance import registry

    cfg = _cfg(args)
    old, new = registry.rollback(cfg.model_name, by=args.user or "cli", reason=args.reason or "")
    print(f"{cfg.model_name}: production v{old} -> v{new} (v{old} archived)")
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from modelops import db

    from sqlalchemy.exc import SQLAlchemyError

    engine = db.get_engine(args.url)
    try:
        applied = db.migrate(engine, force=True)
    except SQLAlchemyError as exc:
        print(f"error: cannot migrate {db.redacted_url(engine)}: {type(exc.orig or exc).__name__}: "
              f"{str(exc.orig or exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"{db.redacted_url(engine)}: schema version {db.schema_version(engine)}"
          + (f" (applied {', '.join(applied)})" if applied else " (up to date)"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import time
    from datetime import timedelta
    from pathlib import Path

    from modelops import db
    from modelops.monitoring import report as monitoring_report

    cfg = _cfg(args)
    start, last = date.fromisoformat(args.start), date.fromisoformat(args.end)
    if last < start:
        raise ValueError(f"--end {last} is before --start {start}")
    engine = db.get_engine()
    db.migrate(engine)
    t0 = time.perf_counter()
    page = monitoring_report.render_range(engine, cfg, start, last + timedelta(days=1), args.model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) / 1024:.0f} KiB, {args.model or cfg.model_name} {start}..{last}, "
          f"rendered in {time.perf_counter() - t0:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m modelops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="problem config YAML (default: $MODELOPS_CONFIG or include/config/store_sales.yaml)")
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate-data", help="write sample data for the config's problem")
    g.add_argument("--start", default="2023-01-01")
    g.add_argument("--end", default="2026-01-01", help="exclusive")
    g.add_argument("--drift-start", default=None, help="inject drift from this day (YYYY-MM-DD)")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--entities", type=int, default=None, help="stores (regression) or customers per day (classification)")
    g.add_argument("--if-missing", action="store_true", help="do nothing when the range already has partitions")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("status", help="every version with aliases, lifecycle, metric, approvals, lineage")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    for name, approve in (("approve", True), ("reject", False)):
        a = sub.add_parser(name, help=f"{name} the waiting approval through Airflow's REST API")
        a.add_argument("--comment", "-m", default="", help="why; stored on the model version")
        a.add_argument("--version", default=None, help="model version (default: the only one waiting)")
        a.add_argument("--api-url", default=None, help="Airflow API base URL (default $MODELOPS_AIRFLOW_API_URL)")
        a.add_argument("--user", default=None, help="Airflow user (default $MODELOPS_AIRFLOW_USER or admin)")
        a.add_argument("--password", default=None, help="default $MODELOPS_AIRFLOW_PASSWORD (embedded default: generated file)")
        a.set_defaults(func=lambda args, _a=approve: cmd_answer(args, _a))

    r = sub.add_parser("rollback", help="move production back to the archived version it replaced")
    r.add_argument("--user", default=None)
    r.add_argument("--reason", default="")
    r.set_defaults(func=cmd_rollback)

    m = sub.add_parser("db-migrate", help="create or upgrade the package's tables (idempotent)")
    m.add_argument("--url", default=None, help="SQLAlchemy URL (default $MODELOPS_DB_URL or the embedded SQLite)")
    m.set_defaults(func=cmd_db_migrate)
    rep = sub.add_parser("report", help="render the monitoring report for a date range to an HTML file")
    rep.add_argument("--model", default=None, help="registered model name (default: model_name of the config)")
    rep.add_argument("--start", required=True, help="first day (YYYY-MM-DD)")
    rep.add_argument("--end", required=True, help="last day, inclusive (YYYY-MM-DD)")
    rep.add_argument("--out", required=True, help="HTML file to write")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from modelops.governance.approvals import ApprovalError
    from modelops.config import ConfigError
    from modelops.governance.registry import RegistryError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, ApprovalError, RegistryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
