#!/bin/sh
# Create the virtualenv (once) and install lambda-supervisor into it, editable, with the
# extras named in $1 (e.g. "test"). Used by demo.sh, test.sh and CI; safe to run again.
# PYTHON picks the interpreter (default python3), VENV the folder (default .venv).
set -eu
cd "$(dirname "$0")/.."
extras=${1:-}
python=${PYTHON:-python3}
venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
"$venv/bin/python" -m pip install --quiet --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --quiet --disable-pip-version-check -e "$spec"
