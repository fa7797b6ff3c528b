#!/usr/bin/env bash
# The image as users run it (issue 9): built with tools/image.sh, run with no
# --init (spawnd is PID 1) and --network host, driven from outside with
# spawnctl: serving, a function and an exec target, the unix socket in
# /run/spawnd, SIGTERM -> exit 0. Part of `make test` (plain build only: it
# takes a minute or two). Skipped, saying why, where no container engine works.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "image_test: ok: $*"
}
bad() {
	failed=$((failed + 1))
	echo "image_test: FAILED: $*"
}
finish() {
	echo "image_test: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if [ -n "${SPAWND_SKIP_IMAGE_TEST:-}" ]; then
	echo "image_test: skipped (SPAWND_SKIP_IMAGE_TEST is set)"
	exit 0
fi
if ! eng=$(tools/image.sh --engine 2>/tmp/image_engine.$$); then
	echo "image_test: skipped: $(cat /tmp/image_engine.$$)"
	rm -f /tmp/image_engine.$$
	exit 0
fi
rm -f /tmp/image_engine.$$
read -r -a ENGINE <<<"$eng"
tag=spawnd:test-$$
if ! tools/image.sh "$tag"; then
	bad "the image does not build"
	finish
fi
ok "built $tag with ${ENGINE[0]}"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
name=spawnd-image-test-$$
spawnctl=bazel-bin/tools/spawnctl/spawnctl
addr=127.0.0.1:$port
cleanup() {
	"${ENGINE[@]}" rm -f "$name" >/dev/null 2>&1
	"${ENGINE[@]}" rmi -f "$tag" >/dev/null 2>&1
}
trap cleanup EXIT
read -r -a ulimit_flag <<<"$(tools/image.sh --run-flags)"
# As shipped: no --init; only the address is changed, to a free loopback port.
if ! "${ENGINE[@]}" run -d --name "$name" --network host "${ulimit_flag[@]}" \
	-e SPAWND_LISTEN="$addr,unix:/run/spawnd/spawnd.sock" "$tag" >/dev/null; then
	bad "the container does not start"
	finish
fi
serving=0
for _ in $(seq 1 150); do
	if "$spawnctl" --addr "$addr" --timeout 2s health >/dev/null 2>&1; then
		serving=1
		break
	fi
	[ "$("${ENGINE[@]}" inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
	sleep 0.2 # polling a container from outside: there is no event to wait on
done
if [ $serving -eq 1 ]; then ok "serving on $addr as PID 1"; else
	bad "not serving on $addr: $("${ENGINE[@]}" logs "$name" 2>&1 | tail -5)"
	finish
fi
comm=$("${ENGINE[@]}" exec "$name" cat /proc/1/comm 2>/dev/null)
[ "$comm" = spawnd ] && ok "spawnd is PID 1" || bad "PID 1 is '$comm', not spawnd"
out=$("$spawnctl" --addr "$addr" start --watch echo from the image 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "from the image" <<<"$out" && ok "function target echo" ||
	bad "echo: exit $rc: $out"
out=$("$spawnctl" --addr "$addr" start --watch true 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "exec target true" || bad "true: exit $rc: $out"
out=$("${ENGINE[@]}" exec "$name" spawnctl --addr unix:/run/spawnd/spawnd.sock health 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "the unix socket in /run/spawnd serves" || bad "unix socket: exit $rc: $out"
"${ENGINE[@]}" stop -t 40 "$name" >/dev/null 2>&1
code=$("${ENGINE[@]}" inspect -f '{{.State.ExitCode}}' "$name" 2>/dev/null)
[ "$code" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit code '$code': $("${ENGINE[@]}" logs "$name" 2>&1 | tail -5)"
finish
