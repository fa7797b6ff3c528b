#!/bin/sh
# Runs a node test script. Node is Debian's (or the machine's) /usr/bin/node;
# the script finds its npm packages next to its real path (see reflection_test.js).
set -eu
command -v node >/dev/null 2>&1 || { echo "node not found: run make deps" >&2; exit 1; }
exec node "$@"
