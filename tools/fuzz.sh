#!/usr/bin/env bash
# Coverage-guided fuzzing of one target of tests/fuzz/ with libFuzzer:
#
#   tools/fuzz.sh TARGET [SECONDS]    TARGET: config_fuzz | frames_fuzz | requests_fuzz
#
# Builds TARGET with clang -fsanitize=fuzzer,address,undefined straight from
# the sources (outside Bazel, whose toolchain here is gcc: only the generated
# sources come from `bazel build`), then fuzzes for SECONDS (default 60) on a
# copy of tests/fuzz/corpus/TARGET. Everything goes to $FUZZ_WORK/TARGET
# (default /tmp/spawnd-fuzz/TARGET): the binary, the growing corpus (kept
# across runs) and any crash-*/leak-*/timeout-* input, which makes the script
# exit non-zero. To keep a fix fixed, copy that input into
# tests/fuzz/corpus/TARGET/: `make test` replays the corpus (tests/fuzz/BUILD).
# Reproduce one with: $FUZZ_WORK/TARGET/TARGET FILE
#
# clang and libFuzzer's runtime are installed here, if missing, and not by
# tools/deps.sh: `make test` builds the fuzz targets with gcc and never needs
# them.
set -euo pipefail

usage() {
	echo "usage: tools/fuzz.sh config_fuzz|frames_fuzz|requests_fuzz [SECONDS]" >&2
	exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
target=$1
seconds=${2:-60}
[[ $seconds =~ ^[0-9]+$ ]] || usage
cd "$(dirname "$0")/.."

tools/deps.sh --only clang libclang-rt-14-dev

# The generated sources: protoc-c's output and the embedded default config.
# `bazel info` names this build's output tree even when the bazel-bin link
# points at another configuration's (--config=asan has its own).
bazel build //proto:api_c //service/config
gen=$(bazel info bazel-bin)

common=(service/common/*.c)
config=(service/config/config.c "$gen/service/config/default_yaml.c")
case $target in
config_fuzz)
	srcs=("${config[@]}" "${common[@]}")
	libs=(-lyaml)
	;;
frames_fuzz)
	# The frame codecs are service/wire/; the target and call specs'
	# (launcher/target_spec.c) resolve functions, which pulls in the launcher.
	srcs=(service/wire/*.c service/launcher/*.c service/target/builtins.c service/target/call.c
		service/target/samples.c "${config[@]}" "${common[@]}")
	libs=(-lyaml -ldl)
	;;
requests_fuzz)
	# Debian's libprotobuf-c is not instrumented: the fuzzer is guided by
	# the generated descriptors' code and by what runs on the messages.
	srcs=(service/rpc/validate.c service/rpc/strings.c service/rpc/codec.c service/rpc/arena.c
		service/common/utf8.c
		"$gen/proto/spawnd/v1/spawnd.pb-c.c"
		"$gen/proto/google/protobuf/duration.pb-c.c"
		"$gen/proto/google/protobuf/timestamp.pb-c.c"
		"$gen/proto/grpc/health/v1/health.pb-c.c")
	libs=(-lprotobuf-c -lgrpc -lgpr)
	;;
*)
	usage
	;;
esac

work=${FUZZ_WORK:-/tmp/spawnd-fuzz}/$target
mkdir -p "$work/corpus"
bin=$work/$target
echo "fuzz: building $bin" >&2
clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I. -I"$gen/proto" \
	"tests/fuzz/$target.c" "${srcs[@]}" "${libs[@]}" -o "$bin"

cp -n "tests/fuzz/corpus/$target"/* "$work/corpus/" 2>/dev/null || true
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	-artifact_prefix="$work/")
[ -f "tests/fuzz/$target.dict" ] && flags+=(-dict="tests/fuzz/$target.dict")
echo "fuzz: $bin ${flags[*]} $work/corpus" >&2
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" "${flags[@]}" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
	echo "fuzz: $target failed (exit $status); inputs: $(ls "$work" | grep -E '^(crash|leak|timeout|oom)-' | tr '\n' ' ')" >&2
fi
exit "$status"
