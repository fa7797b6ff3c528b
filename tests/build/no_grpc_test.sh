#!/usr/bin/env bash
# Fails if the launcher, the registry or the front's launcher link depends on
# gRPC or the API's generated code; or if spawnd-worker (the launcher's, the
# zygotes' and the spawn workers' binary) links gRPC or libyaml; or if the
# front's link reaches the launcher's package other than through the protocol
# package, //service/wire; or if the registry depends on either.
set -euo pipefail
deps=$1
worker=$2
wire=$3
registry=$4
[ -s "$deps" ] || { echo "empty dependency list: $deps"; exit 1; }
[ -s "$worker" ] || { echo "empty dependency list: $worker"; exit 1; }
[ -s "$wire" ] || { echo "empty dependency list: $wire"; exit 1; }
[ -s "$registry" ] || { echo "empty dependency list: $registry"; exit 1; }
grep -q '//service/registry:registry' "$registry" || { echo "query did not list the registry"; exit 1; }
grep -q '//service/launcher:launcher' "$deps" || { echo "query did not list the launcher"; exit 1; }
grep -q '//service/wire:wire' "$deps" || { echo "query did not list the wire package"; exit 1; }
grep -q '//service/launcher:launcher' "$worker" || { echo "spawnd-worker does not hold the launcher"; exit 1; }
grep -q '//service/wire:wire' "$worker" || { echo "spawnd-worker does not hold the wire package"; exit 1; }
grep -q '//service/wire:wire' "$wire" || { echo "the front's link does not use the wire package"; exit 1; }
if grep '^//service/launcher' "$wire"; then
	echo "FAIL: the front's link or the wire package depends on the launcher (above)"
	exit 1
fi
if grep -E '^//service/(launcher|wire)' "$registry"; then
	echo "FAIL: the registry depends on the launcher or the wire package (above)"
	exit 1
fi
if grep -E '//third_party/system:grpc|//proto:api_c' "$deps"; then
	echo "FAIL: the launcher side depends on gRPC (above)"
	exit 1
fi
if grep -E '//third_party/system:(grpc|yaml)|//proto:api_c' "$worker"; then
	echo "FAIL: spawnd-worker depends on gRPC or libyaml (above)"
	exit 1
fi
echo "ok: $(wc -l < "$deps") + $(wc -l < "$worker") targets, none of them gRPC or (worker) libyaml"
