#!/usr/bin/env bash
# make bench: starts spawnd on config/bench.yaml (a free loopback port), runs
# `spawnctl bench` against it, stops it. Extra arguments go to spawnctl bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //service/front:spawnd //service/front:spawnd-worker //tools/spawnctl >/dev/null
log=$(mktemp)
bazel-bin/service/front/spawnd --config config/bench.yaml 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
addr=
for _ in $(seq 1 200); do
	addr=$(sed -n 's/.*"msg":"serving","address":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
	[ -n "$addr" ] && break
	kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.05
done
[ -n "$addr" ] || { echo "bench: spawnd did not start" >&2; cat "$log" >&2; exit 1; }
bazel-bin/tools/spawnctl/spawnctl --addr "$addr" bench --server-pid "$pid" "$@"
