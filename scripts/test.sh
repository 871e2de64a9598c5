#!/usr/bin/env bash
# Install everything into ./.venv and run the whole test suite. Used by CI (.ci/run) and the README.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

# The profile-page tests drive Debian's Chromium (Playwright cannot download its own browser here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing chromium (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "error: /usr/bin/chromium is missing; install it with: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== installing propsync with its api, airflow and dev extras"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e '.[api,airflow,dev]' 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import propsync, polars, duckdb, fastapi, airflow, great_expectations" >/dev/null 2>&1 || { echo "error: the install is incomplete" >&2; exit 1; }

echo "== lint and types"
.venv/bin/ruff check $(ls -d src tests dags bench 2>/dev/null)
.venv/bin/mypy

echo "== tests"
exec .venv/bin/python -m pytest -q "$@"
