#!/usr/bin/env bash
# `spawnctl bench` end to end, briefly: a server on config/bench.yaml, a tiny
# run (scale figures included, at toy sizes), every figure printed with its
# ratio to the floor, the JSON form parsed, exit 0.
set -euo pipefail
root="$TEST_SRCDIR/$TEST_WORKSPACE"
log="$TEST_TMPDIR/spawnd.log"
: >"$log"  # exists before the server writes it: sed may read it first
out="$TEST_TMPDIR/bench.out"
"$root/service/front/spawnd" --config "$root/config/bench.yaml" 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
addr=
deadline=$((SECONDS + 20))
while [ -z "$addr" ]; do
	addr=$(sed -n 's/.*"msg":"serving","address":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
	if [ -z "$addr" ]; then
		kill -0 $pid 2>/dev/null || { echo "spawnd exited"; cat "$log"; exit 1; }
		[ $SECONDS -lt $deadline ] || { echo "spawnd did not serve in 20 s"; cat "$log"; exit 1; }
		sleep 0.05
	fi
done
floor="$root/tools/bench/bench-floor"
"$root/tools/spawnctl/spawnctl" --addr "$addr" bench --count 16 --clients 2 --floor "$floor" \
	--floor-runs 20 --server-pid $pid --scale-addr "$addr" --scale-pid $pid --live 10 \
	--records 40,80 >"$out"
cat "$out"
grep -q '^floor: fork+pipe+wait p50 ' "$out"
grep -q '^floor: F = ' "$out"
for t in noop noop_forkserver noop_prestart noop_spawn true; do
	for f in "Start+Watch c=1 p50" "Run c=1 p50" "Run c=2 throughput" "server CPU per process"; do
		grep "^$t: $f " "$out" | grep -Eq ' [0-9.]+ x' || { echo "no '$f' for $t"; exit 1; }
	done
done
grep -Eq '^destroy sleep .* x' "$out"
grep -Eq '^destroy stubborn .* x' "$out"
grep -q '^idle PSS' "$out"
grep -q '^scale: the same, 10 running' "$out"
grep -q '^scale: filtered ListProcesses page, 80 records' "$out"
grep -q '^front RSS per watcher' "$out"
# --json: one object, a row per figure.
"$root/tools/spawnctl/spawnctl" --addr "$addr" bench --json --count 4 --clients 2 \
	--floor "$floor" --floor-runs 10 noop >"$out"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); \
rows={r["figure"]: r for r in d["rows"]}; assert "noop: Run c=1 p50" in rows, rows; \
assert rows["noop: Run c=1 p50"]["ratio"] > 0' "$out"
# A bad option is a usage error (3).
set +e
"$root/tools/spawnctl/spawnctl" --addr "$addr" bench --clients 0 >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 3 ] || { echo "bench --clients 0 exited $rc, want 3"; exit 1; }
echo "bench_test: ok"
