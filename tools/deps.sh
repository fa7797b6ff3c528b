#!/usr/bin/env bash
# Installs the Debian packages spawnd needs to build and test, if any is missing.
# Costs one dpkg-query when everything is present (see `make deps`).
#   tools/deps.sh                  what make run / make test need
#   tools/deps.sh --only PKG...    just these packages (tools/fuzz.sh: clang)
set -euo pipefail

only=0
if [ "${1:-}" = "--only" ]; then
	only=1
	shift
fi

packages=(
	bazel-bootstrap bazel-rules-java
	libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
	libyaml-dev libcmocka-dev grpc-proto
	python3-grpcio python3-protobuf
	gcc libc6-dev
)
[ $only -eq 0 ] || packages=("$@")

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
	awk '$NF == "installed" { print $1 }' | sed 's/:.*//')
missing=()
for p in "${packages[@]}"; do
	grep -qx "$p" <<<"$installed" || missing+=("$p")
done
# Node.js and npm come from another source on some machines, where
# `apt-get install npm` conflicts with their nodejs: ask for them only if absent.
[ $only -eq 1 ] || command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: not root; run: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ $only -eq 0 ] || exit 0

# The reflection test's npm clients, at the exact versions of the lockfile.
# `npm ci` runs here, outside Bazel (whose sandbox has no network), and only
# when node_modules is missing or older than the lockfile: npm writes
# node_modules/.package-lock.json last, so it dates a complete install.
cd "$(dirname "$0")/.."
lock=tests/reflection/package-lock.json
stamp=tests/reflection/node_modules/.package-lock.json
if [ ! -e "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
	echo "deps: npm ci --prefix tests/reflection" >&2
	npm ci --prefix tests/reflection --ignore-scripts --no-audit --no-fund
fi
