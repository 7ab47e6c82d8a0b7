#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for the test suite and runs all of it.
# Idempotent: a second run reuses the virtualenv and installed packages.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gnupg tor chromium chromium-driver sq debootstrap systemd-container
              tinyproxy zstd apparmor nftables iproute2 openssh-client bubblewrap poppler-utils
              fonts-noto-core fonts-noto-cjk)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Debian's tor package starts tor.service where systemd runs: keep it off the public network.
    $SUDO systemctl mask tor.service tor@default.service >/dev/null 2>&1 || true
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's Python: it carries the distribution's security fixes (CVE-2024-6232 in
# tarfile among them, tests/core/test_runtime.py); a self-built one may not.
PYTHON=${SDWM_PYTHON:-/usr/bin/python3}
VENV=${SDWM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# Exactly the locked releases, each checked against its hash, then the project itself
# with nothing more (its build backend, setuptools, is in the lock too).
"$VENV/bin/pip" install -q --require-hashes -r requirements/build.txt
"$VENV/bin/pip" install -q --require-hashes --no-build-isolation -r requirements/test.txt
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .

export PATH="$PWD/$VENV/bin:$PATH"
ruff check .
ruff format --check .
mypy
set +e
pytest -p no:cacheprovider "$@"
rc=$?
set -e
# pytest's 5 means it collected no test: that is a failure here, not a pass.
[ $rc -eq 5 ] && { echo "no tests ran"; exit 1; }
exit $rc
