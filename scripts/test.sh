#!/bin/sh
# Set everything up with the test extras, then run the whole test suite with two pytest
# workers per CPU: most tests wait on real processes and sockets rather than compute, so
# one per CPU leaves the CPUs half idle (about 4 minutes on 2 CPUs). Arguments go to
# pytest: a file, -k, -m "not chaos".
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh test
venv=${VENV:-.venv}
workers=$(( $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) * 2 ))
exec "$venv/bin/python" -m pytest -n "$workers" "$@"
