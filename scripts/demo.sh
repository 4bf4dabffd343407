#!/bin/sh
# Set everything up, then run the main job: examples/hello.py invoked through the real
# runtime (bin/bootstrap -> supervisor -> forked worker) on the embedded local emulator.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec .venv/bin/lambda-supervisor invoke examples/hello.py:handler --event '{"name": "world"}'
