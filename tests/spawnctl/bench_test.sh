#!/usr/bin/env bash
# `spawnctl bench` end to end, briefly: a server on config/bench.yaml, a short
# run, every figure printed with its ratio to the floor, exit 0.
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
"$root/tools/spawnctl/spawnctl" --addr "$addr" bench --count 16 --clients 2 --server-pid $pid >"$out"
cat "$out"
grep -q '^floor: fork+wait' "$out"
for t in noop noop_forkserver noop_prestart noop_spawn true; do
	grep -Eq "^start $t \(2 clients\) .* p50 = +[0-9.]+ x " "$out" || { echo "no figure for $t"; exit 1; }
done
grep -Eq '^destroy sleep .* x kill\+wait' "$out"
grep -Eq '^destroy stubborn .* x kill\+wait' "$out"
grep -q '^server RSS' "$out"
# A bad option is a usage error (3).
set +e
"$root/tools/spawnctl/spawnctl" --addr "$addr" bench --clients 0 >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 3 ] || { echo "bench --clients 0 exited $rc, want 3"; exit 1; }
echo "bench_test: ok"
