#!/usr/bin/env bash
# The HTTP service as `pip install -e '.[api]'` installs it: without Airflow, whose constraints pin
# an older FastAPI in the main environment, so the newest FastAPI the `api` extra allows. Runs the
# HTTP tests in ./.venv-api. Called by CI after scripts/test.sh (which installs Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ ! -x .venv-api/bin/python ]; then
  "$PYTHON" -m venv .venv-api
fi
echo "== installing propsync with its api and dev extras only (no Airflow pins)"
.venv-api/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv-api/bin/python -m pip install -q -e '.[api,dev]' 2>&1 | grep -v "is ignored" || true
.venv-api/bin/python -c "import fastapi, starlette; print('== HTTP tests on FastAPI', fastapi.__version__, 'Starlette', starlette.__version__)"
exec .venv-api/bin/python -m pytest -q -p no:cacheprovider tests/api tests/corpus/test_http_corpus.py "$@"
