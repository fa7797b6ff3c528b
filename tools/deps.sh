#!/usr/bin/env bash
# Installs the Debian packages spawnd needs to build and test, if any is missing.
# Costs one dpkg-query when everything is present (see `make deps`).
#   tools/deps.sh                  what make run / make test need
#   tools/deps.sh --only PKG...    just these packages (tools/fuzz.sh: clang)
#
# It says what it does on stderr ("deps: ...") and, when it cannot install,
# exits non-zero with the reason and the command a user can run instead.
# tests/build/deps_test.sh runs it against fake dpkg-query/apt-get/npm/id.
set -uo pipefail

say() { echo "deps: $*" >&2; }
die() {
	say "$*"
	exit 1
}

only=0
if [ "${1:-}" = "--only" ]; then
	only=1
	shift
fi

packages=(
	bazel-bootstrap bazel-rules-java
	libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
	libyaml-dev libcmocka-dev grpc-proto
	python3-grpcio python3-protobuf python3-yaml
	gcc g++ libc6-dev
	openssl libssl-dev libsqlite3-dev
	libmicrohttpd-dev prometheus python3-prometheus-client
)
[ $only -eq 0 ] || packages=("$@")

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs Debian (bookworm)"

# dpkg-query exits 1 when any name is unknown to it (a package never
# installed on this machine): that is the normal case on a fresh machine, not
# an error. What it prints for the packages it knows is what counts.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null |
	awk '$2 ~ /^.i/ { print $1 }' | sed 's/:.*//')
missing=()
for p in "${packages[@]}"; do
	grep -qx -- "$p" <<<"$installed" || missing+=("$p")
done
# Node.js and npm come from another source on some machines, where
# `apt-get install npm` conflicts with their nodejs: ask for them only if absent.
[ $only -eq 1 ] || command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
	say "missing Debian packages: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		die "not root, cannot install them; run: sudo apt-get update && sudo apt-get install ${missing[*]}"
	fi
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	say "apt-get update"
	apt-get update -qq || die "apt-get update failed (is the Debian archive reachable?)"
	say "apt-get install ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
	say "installed ${#missing[@]} packages"
fi

[ $only -eq 0 ] || exit 0

# The reflection test's npm clients, at the exact versions of the lockfile.
# `npm ci` runs here, outside Bazel (whose sandbox has no network), and only
# when node_modules is missing or older than the lockfile: npm writes
# node_modules/.package-lock.json last, so it dates a complete install.
cd "$(dirname "$0")/.." || die "cannot enter the project directory"
lock=tests/reflection/package-lock.json
stamp=tests/reflection/node_modules/.package-lock.json
if [ ! -e "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
	command -v npm >/dev/null 2>&1 || die "npm not found after installing nodejs npm"
	say "npm ci --prefix tests/reflection"
	npm ci --prefix tests/reflection --ignore-scripts --no-audit --no-fund ||
		die "npm ci failed for tests/reflection (is the npm registry reachable?)"
fi
exit 0
