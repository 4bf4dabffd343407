#!/bin/sh
# Set everything up with the test extras, then run the whole test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
