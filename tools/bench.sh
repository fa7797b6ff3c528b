#!/usr/bin/env bash
# make bench: starts spawnd on config/bench.yaml (a free loopback port), runs
# `spawnctl bench` against it, stops it. Extra arguments go to spawnctl bench.
#
# The store's cost (SPEC §12 "Store"): a second spawnd on the same config plus
# `store: {path: ...}` (sync normal; BENCH_STORE_SYNC=full for sync full) in a
# temporary directory, compared with the first in the same run
# (`--store-addr`). BENCH_STORE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //service/front:spawnd //service/front:spawnd-worker //tools/spawnctl >/dev/null
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_server CONFIG LOG: starts spawnd, waits for its address (in $addr).
start_server() {
	bazel-bin/service/front/spawnd --config "$1" 2>"$2" &
	pid=$!
	pids+=("$pid")
	addr=
	for _ in $(seq 1 200); do
		addr=$(sed -n 's/.*"msg":"serving","address":"\([^"]*\)".*/\1/p' "$2" | head -n 1)
		[ -n "$addr" ] && break
		kill -0 "$pid" 2>/dev/null || { cat "$2" >&2; exit 1; }
		sleep 0.05
	done
	[ -n "$addr" ] || { echo "bench: spawnd did not start" >&2; cat "$2" >&2; exit 1; }
}

start_server config/bench.yaml "$tmp/plain.log"
plain_addr=$addr plain_pid=$pid
store_args=()
if [ "${BENCH_STORE:-1}" != 0 ]; then
	sync=${BENCH_STORE_SYNC:-normal}
	{ cat config/bench.yaml; echo "store: {path: $tmp/bench.db, sync: $sync}"; } >"$tmp/store.yaml"
	start_server "$tmp/store.yaml" "$tmp/store.log"
	store_args=(--store-addr "$addr" --store-name "store (sync $sync)")
fi
bazel-bin/tools/spawnctl/spawnctl --addr "$plain_addr" bench --server-pid "$plain_pid" \
	"${store_args[@]}" "$@"
if [ "${BENCH_STORE:-1}" != 0 ]; then
	echo "store file after the run: $(du -k "$tmp"/bench.db* | awk '{s += $1} END {print s}') KiB" \
		"($(ls "$tmp" | grep -c '^bench.db') files; history.max_records 1000)"
fi
