#!/usr/bin/env bash
# Audit statebridge's installed runtime dependencies for known vulnerabilities.
#
# Installs pip-audit into the project's virtualenv, writes the exact installed versions of
# every distribution statebridge needs at run time (its dependencies and theirs, read from
# the installed metadata; not the dev tools, not pip-audit itself) to a requirements file,
# and audits that file without resolving anything again. Exit status 1 when a vulnerability
# is found (or, with STATEBRIDGE_AUDIT_STRICT=1, when a package could not be audited).
#
# Usage: bash scripts/ci-audit.sh        (after `.venv/bin/pip install -e '.[dev]'`)
#        VENV=/path/to/venv bash scripts/ci-audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

"$PY" -m pip install -q --disable-pip-version-check 'pip-audit>=2.7' </dev/null

requirements="$(mktemp)"

"$PY" - "$requirements" <<'PYTHON'
"""Pin the installed runtime dependency closure of statebridge."""
import re
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


environment = default_environment()
pins: dict[str, str] = {}
pending = [("statebridge", frozenset())]
seen: set[tuple[str, frozenset[str]]] = set()
while pending:
    name, extras = pending.pop()
    if (canonical(name), extras) in seen:
        continue
    seen.add((canonical(name), extras))
    distribution = metadata.distribution(name)
    if canonical(name) != "statebridge":
        pins[canonical(name)] = distribution.version
    for text in distribution.requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
        ):
            continue
        pending.append((requirement.name, frozenset(requirement.extras)))

with open(sys.argv[1], "w", encoding="utf-8") as out:
    for name, version in sorted(pins.items()):
        out.write(f"{name}=={version}\n")
print(f"auditing {len(pins)} installed runtime dependencies of statebridge")
PYTHON

report="$(mktemp)"
trap 'rm -f "$requirements" "$report"' EXIT
status=0
"$VENV/bin/pip-audit" --requirement "$requirements" --no-deps --disable-pip \
    --progress-spinner off --format json --output "$report" 2>/dev/null || status=$?

# A summary that says what was and was not checked: a vulnerability service that cannot be
# reached (a registry mirror without PyPI's per-version JSON API) audits nothing, and that
# must not read as "clean". STATEBRIDGE_AUDIT_STRICT=1 makes unaudited packages fail too.
"$PY" - "$report" "$status" <<'PYTHON'
import json
import os
import sys

path, status = sys.argv[1], int(sys.argv[2])
try:
    with open(path, encoding="utf-8") as source:
        dependencies = json.load(source)["dependencies"]
except (OSError, ValueError, KeyError):
    print(f"pip-audit failed (exit {status}) without a report")
    sys.exit(status or 1)
vulnerable = [item for item in dependencies if item.get("vulns")]
skipped = [item for item in dependencies if item.get("skip_reason")]
for item in vulnerable:
    for vuln in item["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"VULNERABLE {item['name']} {item['version']}: {vuln['id']} (fixed in {fixes})")
audited = len(dependencies) - len(skipped)
print(f"pip-audit: {audited} of {len(dependencies)} dependencies audited, "
      f"{len(vulnerable)} with known vulnerabilities")
if skipped:
    print(f"WARNING: {len(skipped)} could not be audited "
          f"({skipped[0]['skip_reason'].split(':')[0]}): "
          + ", ".join(item["name"] for item in skipped))
if vulnerable:
    sys.exit(1)
if skipped and os.environ.get("STATEBRIDGE_AUDIT_STRICT") == "1":
    sys.exit(1)
PYTHON
