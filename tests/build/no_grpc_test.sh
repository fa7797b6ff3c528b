#!/usr/bin/env bash
# Fails if the launcher, the registry or the front's launcher link depends on
# gRPC or the API's generated code.
set -euo pipefail
deps=$1
[ -s "$deps" ] || { echo "empty dependency list: $deps"; exit 1; }
grep -q '//service/launcher:launcher' "$deps" || { echo "query did not list the launcher"; exit 1; }
if grep -E '//third_party/system:grpc|//proto:api_c' "$deps"; then
	echo "FAIL: the launcher side depends on gRPC (above)"
	exit 1
fi
echo "ok: $(wc -l < "$deps") targets, none of them gRPC"
