#!/usr/bin/env bash
# Installs the Debian packages spawnd needs to build and test, if any is missing.
# Costs one dpkg-query when everything is present (see `make deps`).
set -euo pipefail

packages=(
	bazel-bootstrap bazel-rules-java
	libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
	libyaml-dev libcmocka-dev grpc-proto
	python3-grpcio python3-protobuf
	gcc libc6-dev
)

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
	awk '$NF == "installed" { print $1 }' | sed 's/:.*//')
missing=()
for p in "${packages[@]}"; do
	grep -qx "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root; run: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
