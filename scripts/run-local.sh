#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs, on 127.0.0.1, the DEMO: a drop (source UI)
# and a responder workstation (journalist UI) wired to it with throwaway keys, in ./demo
# (docs/demo.md). Ctrl-C stops both.
#   bash scripts/run-local.sh [--port 8080] [--workstation-port 8081]
# With your own team key it runs a real local drop instead (source UI only, in ./data,
# never the demo), which --onion also publishes through tor:
#   bash scripts/run-local.sh --responder-key team.asc [...] [--port 8080] [--onion]
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=8080; WS_PORT=(); ONION=(); KEYS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT=$2; shift 2 ;;
        --workstation-port) WS_PORT=(--workstation-port "$2"); shift 2 ;;
        --onion) ONION=(--onion); shift ;;
        --responder-key) KEYS+=(--responder-key "$2"); shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
if [ ${#KEYS[@]} -eq 0 ] && [ ${#ONION[@]} -gt 0 ]; then
    echo "--onion is for a real drop (give --responder-key): the demo stays on loopback" >&2
    exit 2
fi
if [ ${#KEYS[@]} -gt 0 ] && [ ${#WS_PORT[@]} -gt 0 ]; then
    echo "--workstation-port is for the demo; a real drop serves the source UI only" >&2
    exit 2
fi

need=(gnupg python3-venv)
[ ${#ONION[@]} -gt 0 ] && need+=(tor)
# The demo's workstation draws sources' files in a sandbox (docs/workstation.md).
[ ${#KEYS[@]} -eq 0 ] && need+=(bubblewrap poppler-utils)
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
# The drop's and the workstation's locked sets (the demo runs both), not the test tools.
"$VENV/bin/pip" install -q --require-hashes --no-build-isolation -r requirements/workstation.txt
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .

if [ ${#KEYS[@]} -eq 0 ]; then
    exec "$VENV/bin/securedrop-wm" demo up --data-dir "${SDWM_DEMO_DIR:-demo}" \
        --port "$PORT" "${WS_PORT[@]}"
fi
DATA=${SDWM_DATA:-data}
if [ ! -f "$DATA/config.toml" ]; then
    "$VENV/bin/securedrop-wm" init --data-dir "$DATA" "${KEYS[@]}"
fi
exec "$VENV/bin/securedrop-wm" --config "$DATA/config.toml" serve --port "$PORT" "${ONION[@]}"
