#!/usr/bin/env bash
# Refreshes the hash-locked dependency sets to the newest releases that pyproject.toml
# allows, then runs the whole suite on them (scripts/test.sh, exactly what CI runs).
#   bash scripts/refresh-locks.sh            # every package to its newest release
#   bash scripts/refresh-locks.sh --keep     # re-lock after a pyproject.toml change only
# Review `git diff requirements/` and commit the locks only if the suite passed.
#
# requirements/build.txt   pip and the build backends, installed first everywhere
# requirements/test.txt    everything: the server, the workstation, the transfer
#                          machine, the test tools and the build backend (CI, run-local)
# requirements/server.txt  what the internet-facing drop server runs (Ansible)
# requirements/workstation.txt, requirements/transfer.txt  the other two machines
# requirements/wordlists.txt  wordfreq, for scripts/build_wordlists.py only (never
#                          installed on a machine of the drop; its own venv)
# The smaller sets are resolved within test.txt, so one version of each package is
# tested and deployed everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

UPGRADE=(--upgrade)
[ "${1:-}" = "--keep" ] && UPGRADE=()

PYTHON=${SDWM_PYTHON:-/usr/bin/python3}
TOOLS=${SDWM_TOOLS_VENV:-.tools-venv}
[ -x "$TOOLS/bin/python" ] || "$PYTHON" -m venv "$TOOLS"
"$TOOLS/bin/pip" install -q --require-hashes -r requirements/tools.txt
UV="$TOOLS/bin/uv"

# Debian 12 on amd64 with its Python 3.11: the machines the drop is deployed to.
COMMON=(--quiet --generate-hashes --python-version 3.11
        --python-platform x86_64-unknown-linux-gnu
        --custom-compile-command "bash scripts/refresh-locks.sh")
"$UV" pip compile "${COMMON[@]}" "${UPGRADE[@]}" requirements/tools.in -o requirements/tools.txt
"$UV" pip compile "${COMMON[@]}" "${UPGRADE[@]}" requirements/wordlists.in \
    -o requirements/wordlists.txt
"$UV" pip compile "${COMMON[@]}" "${UPGRADE[@]}" --all-extras \
    pyproject.toml requirements/build.in -o requirements/test.txt
within=(-c requirements/test.txt)
"$UV" pip compile "${COMMON[@]}" "${within[@]}" requirements/build.in -o requirements/build.txt
"$UV" pip compile "${COMMON[@]}" "${within[@]}" pyproject.toml -o requirements/server.txt
"$UV" pip compile "${COMMON[@]}" "${within[@]}" --extra workstation \
    pyproject.toml -o requirements/workstation.txt
"$UV" pip compile "${COMMON[@]}" "${within[@]}" --extra transfer \
    pyproject.toml -o requirements/transfer.txt

git --no-pager diff --stat -- requirements/ || true
exec bash scripts/test.sh
