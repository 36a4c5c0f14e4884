"""No credentials in the repository, except local-dev defaults marked as such on the same line.

Secrets come from Airflow connections / a secrets backend (see README, "Reliability and
security"); this scans every tracked file outside tests/ for passwords in URLs and for
password/secret/token assignments with a literal value.
"""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<pw>[^@\s'\"/]+)@")
ASSIGNMENT = re.compile(r"(?i)\b(password|passwd|secret|secret_access_key|api_key|token)\b[\"']?\s*[:=]\s*[\"']?(?P<pw>[A-Za-z0-9+/_\-]{4,})(?![.(\w])")
ALLOWED_VALUES = {"None", "none", "null", "true", "false", "str", "bool", "self", "password", "token", "secret"}
MARKER = "local-dev default"


def test_no_credentials_outside_marked_local_dev_defaults():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for rel in files:
        if rel.startswith("tests/") or rel.endswith((".lock", ".png", ".parquet")):
            continue
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if MARKER in line:
                continue
            for rx in (URL_WITH_PASSWORD, ASSIGNMENT):
                for m in rx.finditer(line):
                    pw = m.group("pw")
                    if pw in ALLOWED_VALUES or pw.startswith(("$", "{", "<", "os.", "c.", "self.", "env")) or "..." in line:
                        continue
                    found.append(f"{rel}:{n}: {line.strip()[:120]}")
    assert not found, "credentials in the repository (mark local-dev defaults with '# local-dev default'):\n" + "\n".join(found)
