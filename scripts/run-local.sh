#!/usr/bin/env bash
# Sets up and runs the drop locally on a fresh Debian 12 machine: SQLite, a local GnuPG
# home, throwaway responder keys unless you give your own, source UI on 127.0.0.1.
#   bash scripts/run-local.sh [--responder-key team.asc ...] [--port 8080] [--onion]
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=8080; ONION=(); KEYS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT=$2; shift 2 ;;
        --onion) ONION=(--onion); shift ;;
        --responder-key) KEYS+=(--responder-key "$2"); shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

need=(gnupg python3-venv)
[ ${#ONION[@]} -gt 0 ] && need+=(tor)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO systemctl mask tor.service >/dev/null 2>&1 || true
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${SDWM_PYTHON:-/usr/bin/python3}
VENV=${SDWM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --require-hashes -r requirements/build.txt
"$VENV/bin/pip" install -q --require-hashes --no-build-isolation -r requirements/test.txt
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .

DATA=${SDWM_DATA:-data}
if [ ! -f "$DATA/config.toml" ]; then
    if [ ${#KEYS[@]} -eq 0 ]; then
        "$VENV/bin/securedrop-wm" init --data-dir "$DATA" --demo-keys
    else
        "$VENV/bin/securedrop-wm" init --data-dir "$DATA" "${KEYS[@]}"
    fi
fi
exec "$VENV/bin/securedrop-wm" --config "$DATA/config.toml" serve --port "$PORT" "${ONION[@]}"
