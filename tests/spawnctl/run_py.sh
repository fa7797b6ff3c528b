#!/bin/sh
# Runs a test file with Debian's interpreter (/usr/bin/python3), never the
# python3 on PATH. -B: never write __pycache__ next to the sources.
set -eu
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -B -u "$@"
