#!/usr/bin/env bash
# Set up (idempotent, reuses what tools/setup.sh installed) and run lint + the test suite.
#   bash tools/run_tests.sh [extra pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh
PY=${MMSCALEKD_VENV:-$ROOT/.venv}/bin/python
echo "[tests] ruff check"
"$PY" -m ruff check .
echo "[tests] pytest"
exec "$PY" -m pytest -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
