#!/usr/bin/env bash
# Set up Tessera on a fresh Debian / Raspberry Pi OS machine, then act.
#
#   tools/bootstrap.sh demo [tessera demo options]   set up, then run a simulated branch day
#   tools/bootstrap.sh test [pytest options]         set up, then ruff + mypy + import contracts + pytest
#   tools/bootstrap.sh setup                         set up only
#
# Setup installs the Debian packages the firmware and its tests use (needs root
# or sudo), creates .venv and installs Tessera into it (editable, with the
# compiled ring buffer: a compile failure fails the setup).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${TESSERA_VENV:-$ROOT/.venv}

APT_PACKAGES=(python3 python3-venv python3-dev gcc mosquitto mosquitto-clients
              espeak-ng fonts-wqy-microhei fonts-dejavu-core alsa-utils libzbar0 openssl
              systemd chromium)  # systemd-analyze: the unit tests; chromium: tests/web

setup_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
    # the shipped broker is started by the tests' fixtures, not by systemd
    if command -v systemctl >/dev/null && systemctl is-active -q mosquitto 2>/dev/null; then
        $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
}

setup_venv() {
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    # pinned (tools/constraints.txt): a fresh install never resolves whatever is newest
    "$VENV/bin/python" -m pip install -q -c "$ROOT/tools/constraints.txt" --upgrade pip
    # strict editable install: a real tessera/ tree of links under build/ that mypy,
    # import-linter and ruff read as the package (setuptools' package-dir mapping is
    # invisible to them otherwise); a module added later needs this setup run again
    "$VENV/bin/python" -m pip install -q -c "$ROOT/tools/constraints.txt" -e "$ROOT[dev]" \
        --config-settings editable_mode=strict
    # fail loudly if the compiled ring buffer is missing (never test only the twin)
    "$VENV/bin/python" -c "import tessera.cext._ring"
    # bytecode for our own sources, as a wheel install has it (an editable install
    # leaves it to the first import, which PYTHONDONTWRITEBYTECODE may forbid)
    "$VENV/bin/python" -m compileall -q firmware drivers cext hw-sim >/dev/null
}

run_tests() {
    local PY="$VENV/bin"
    echo "== ruff"; "$PY/ruff" check firmware drivers cext hw-sim tests
    echo "== mypy"; "$PY/mypy" --config-file "$ROOT/pyproject.toml" -p tessera
    # the tests, one folder at a time: each has its own conftest and helper modules that
    # its tests import by bare name (pytest's rootdir-relative sys.path), as mypy sees them
    echo "== mypy (tests)"
    for d in tests tests/*/; do
        "$PY/mypy" --config-file "$ROOT/pyproject.toml" "${d%/}"/*.py
    done
    echo "== import contracts"; "$PY/lint-imports" --config "$ROOT/pyproject.toml"
    echo "== pytest"; "$PY/pytest" "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
    setup) setup_apt; setup_venv ;;
    test)  setup_apt; setup_venv; run_tests "$@" ;;
    demo)  setup_apt; setup_venv; exec "$VENV/bin/tessera" demo "$@" ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
esac
