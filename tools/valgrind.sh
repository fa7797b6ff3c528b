#!/usr/bin/env bash
# Runs end-to-end test files against spawnd under valgrind (memcheck; forked
# children are checked too): any memory error or definite leak makes spawnd
# exit 9, which the harness reports as a failed stop. Slow: a few minutes.
#   tools/valgrind.sh [tests/e2e/FILE_test.py ...]   (default: a core set)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind: apt-get install valgrind" >&2; exit 1; }
bazel build //service/front:spawnd //service/front:spawnd-worker //service/target:libspawnd_samples.so >/dev/null
bin=$(bazel info bazel-bin 2>/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/spawnd" <<EOS
#!/bin/sh
exec valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--error-exitcode=9 --child-silent-after-fork=no "$bin/service/front/spawnd" "\$@"
EOS
chmod +x "$work/spawnd"
export SPAWND_BIN="$work/spawnd"
# Under valgrind /proc/self/exe is valgrind's: name the worker explicitly.
export SPAWND_WORKER="$bin/service/front/spawnd-worker"
export SPAWND_SAMPLES_SO="$bin/service/target/libspawnd_samples.so"
export SPAWND_SANITIZED=1   # relaxes the harness's timing windows
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/e2e/results_test.py tests/e2e/watch_test.py tests/e2e/bad_input_test.py)
status=0
for f in "${files[@]}"; do
	echo "== $f under valgrind"
	tests/e2e/run_py.sh "$f" || status=1
done
exit $status
