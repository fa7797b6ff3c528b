# A thin wrapper over Bazel: no build logic lives here (see BUILD files).
BAZEL ?= bazel
SPAWND_ARGS ?=

.PHONY: deps build run test test-plain test-asan bench clean

deps:
	@tools/deps.sh

build: deps
	$(BAZEL) build //...

# Starts spawnd in the foreground on its embedded default config
# (sample targets on 127.0.0.1:50051). Pass a file with SPAWND_ARGS="--config F".
run: deps
	$(BAZEL) build //service/front:spawnd
	exec bazel-bin/service/front/spawnd $(SPAWND_ARGS)

# Every test, in the plain build and under AddressSanitizer + UBSan.
test: deps test-plain test-asan

test-plain:
	$(BAZEL) test //...

test-asan:
	$(BAZEL) test --config=asan //...

# Performance against this machine's floor (SPEC §9): see tools/bench.sh.
bench: deps
	tools/bench.sh $(BENCH_ARGS)

clean:
	$(BAZEL) clean
