#!/bin/sh
# Runs an end-to-end test file with Debian's interpreter: grpcio and protobuf are
# installed for /usr/bin/python3 only (the python3 on PATH may be another one).
# -B: never write __pycache__ next to the sources.
set -eu
export PYTHONDONTWRITEBYTECODE=1
export GRPC_ENABLE_FORK_SUPPORT=false
exec /usr/bin/python3 -B -u "$@"
