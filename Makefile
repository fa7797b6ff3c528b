# A thin wrapper over Bazel: no build logic lives here (see BUILD files).
BAZEL ?= bazel
SPAWND_ARGS ?=

.PHONY: deps build run test test-plain test-asan bench soak watchers clean

deps:
	@tools/deps.sh

build: deps
	$(BAZEL) build //...

# Starts spawnd in the foreground on its embedded default config
# (sample targets on 127.0.0.1:50051). Pass a file with SPAWND_ARGS="--config F".
run: deps
	$(BAZEL) build //service/front:spawnd
	exec bazel-bin/service/front/spawnd $(SPAWND_ARGS)

# Every test, in the plain build and under AddressSanitizer + UBSan, then the
# container image as users run it (plain build only; skipped, saying why,
# where no container engine works).
test: deps test-plain test-asan test-image

test-plain:
	$(BAZEL) test //...

test-asan:
	$(BAZEL) test --config=asan //...

test-image:
	BAZEL=$(BAZEL) tools/image_test.sh

# The image spawnd:dev from deploy/Dockerfile, with podman (or docker).
image: deps
	BAZEL=$(BAZEL) tools/image.sh spawnd:dev

# Performance against this machine's floor (SPEC §9): see tools/bench.sh.
bench: deps
	tools/bench.sh $(BENCH_ARGS)

# Soak runs, by hand only (not part of make test): tools/soak.py (5,000 mixed
# processes, destroys, watchers that leave) and tools/watchers.py (1,000 open
# Watch streams). Options: SOAK_ARGS="--processes 20000 --json", WATCHERS_ARGS=...
soak: deps
	$(BAZEL) build //service/front:spawnd //service/front:spawnd-worker
	/usr/bin/python3 tools/soak.py $(SOAK_ARGS)

watchers: deps
	$(BAZEL) build //service/front:spawnd //service/front:spawnd-worker
	/usr/bin/python3 tools/watchers.py $(WATCHERS_ARGS)

clean:
	$(BAZEL) clean
