#!/bin/sh
# Set everything up with the test extras, then run the whole test suite, one pytest worker
# per CPU (about 6 minutes on 2 CPUs). Arguments go to pytest: a file, -k, -m "not chaos".
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh test
venv=${VENV:-.venv}
exec "$venv/bin/python" -m pytest -n auto "$@"
