#!/usr/bin/env bash
# tools/deps.sh against fake dpkg-query, apt-get, npm and id (issue 9, point 1):
# on a fresh machine it installs exactly what is missing; when everything is
# there it runs no apt-get and says nothing; not root, it names the packages and
# the sudo command; --only PKG... looks at those alone.
#
# Each case runs a copy of deps.sh inside a temporary tree laid out like the
# repository (tools/deps.sh, tests/reflection/package-lock.json, no
# node_modules), with PATH holding only the fakes and the few real tools the
# script needs (awk, sed, grep, dirname): the real repository and the machine's
# packages are never touched. The fakes log their arguments; the test checks
# the logs, the exit status and what the script printed.
#
# Usage: deps_test.sh PATH/TO/tools/deps.sh
set -uo pipefail

src=${1:?usage: deps_test.sh tools/deps.sh}
[ -f "$src" ] || { echo "no such file: $src" >&2; exit 2; }
src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
bash=$(command -v bash)
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/deps_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# What deps.sh needs by default (keep in step with its `packages` list).
ALL=(bazel-bootstrap bazel-rules-java
	libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libprotobuf-dev
	libyaml-dev libcmocka-dev grpc-proto
	python3-grpcio python3-protobuf python3-yaml
	gcc g++ libc6-dev
	openssl libssl-dev libsqlite3-dev
	libmicrohttpd-dev prometheus python3-prometheus-client)
LOCK_ARGS="ci --prefix tests/reflection --ignore-scripts --no-audit --no-fund"

failures=0
fail() {
	echo "FAIL [$case]: $*" >&2
	failures=$((failures + 1))
}

# setup CASE: a fresh tree $t with repo/, bin/ (the fakes), the state files.
#   installed: "PKG STATUS" lines dpkg-query knows (STATUS "ii" = installed)
#   calls:     one line per fake call: "TOOL ARGS", npm's with its cwd
setup() {
	case=$1
	t=$tmp/$case
	mkdir -p "$t/repo/tools" "$t/repo/tests/reflection" "$t/bin"
	cp "$src" "$t/repo/tools/deps.sh"
	echo '{"lockfileVersion": 3}' >"$t/repo/tests/reflection/package-lock.json"
	: >"$t/installed"
	: >"$t/calls"
	for tool in awk sed grep dirname; do
		ln -s "$(command -v $tool)" "$t/bin/$tool"
	done
	# dpkg-query -W -f=FORMAT PKG...: "PKG STATUS" for the packages it knows,
	# an error and exit 1 for the others (as the real one does).
	cat >"$t/bin/dpkg-query" <<EOF
#!/bin/sh
printf "dpkg-query %s\\n" "\$*" >>"$t/calls"
rc=0
for a in "\$@"; do
	case "\$a" in -*) continue ;; esac
	found=
	while read -r p s; do
		if [ "\$p" = "\$a" ] || [ "\${p%%:*}" = "\$a" ]; then found="\$p \$s"; fi
	done <"$t/installed"
	if [ -n "\$found" ]; then echo "\$found "; else echo "dpkg-query: no packages found matching \$a" >&2; rc=1; fi
done
exit \$rc
EOF
	# id -u: \$FAKE_UID.
	cat >"$t/bin/id" <<EOF
#!/bin/sh
printf "id %s\\n" "\$*" >>"$t/calls"
[ "\$1" = "-u" ] && echo "\${FAKE_UID:-0}"
EOF
	# apt-get: logs (with DEBIAN_FRONTEND); install marks the packages
	# installed, and installing npm puts an npm on PATH.
	cat >"$t/bin/apt-get" <<EOF
#!/bin/sh
printf "apt-get %s [DEBIAN_FRONTEND=%s]\\n" "\$*" "\${DEBIAN_FRONTEND:-}" >>"$t/calls"
[ -n "\${FAKE_APT_FAIL:-}" ] && [ "\$1" = "\$FAKE_APT_FAIL" ] && exit 100
if [ "\$1" = install ]; then
	for a in "\$@"; do
		case "\$a" in -*|install) continue ;; esac
		echo "\$a ii" >>"$t/installed"
		[ "\$a" = npm ] && /bin/cp "$t/npm" "$t/bin/npm" && /bin/chmod +x "$t/bin/npm"
	done
fi
exit 0
EOF
	cat >"$t/npm" <<EOF
#!/bin/sh
printf "npm %s [cwd=%s]\\n" "\$*" "\$PWD" >>"$t/calls"
EOF
	chmod +x "$t/bin/dpkg-query" "$t/bin/id" "$t/bin/apt-get" "$t/npm"
}

have_npm() { cp "$t/npm" "$t/bin/npm" && chmod +x "$t/bin/npm"; }
install_all() { for p in "${ALL[@]}"; do echo "$p ii" >>"$t/installed"; done; }
fresh_node_modules() {
	mkdir -p "$t/repo/tests/reflection/node_modules"
	touch -d '2000-01-01' "$t/repo/tests/reflection/package-lock.json"
	touch "$t/repo/tests/reflection/node_modules/.package-lock.json"
}

# run [ARGS...]: runs the copy from another directory; sets rc, out, err.
run() {
	(cd "$t" && env -i PATH="$t/bin" FAKE_UID="${FAKE_UID:-0}" FAKE_APT_FAIL="${FAKE_APT_FAIL:-}" \
		"$bash" "$t/repo/tools/deps.sh" "$@" >"$t/out" 2>"$t/err")
	rc=$?
	out=$(cat "$t/out")
	err=$(cat "$t/err")
}

# The fake calls other than dpkg-query and id, one per line.
actions() { grep -v -e '^dpkg-query ' -e '^id ' "$t/calls"; }

expect_rc() { [ "$rc" -eq "$1" ] || fail "exit status $rc, want $1; stderr: $err"; }
expect_nonzero() { [ "$rc" -ne 0 ] || fail "exit status 0, want non-zero; stderr: $err"; }
expect_actions() {
	local want got
	want=$(printf '%s\n' "$@")
	got=$(actions)
	[ "$got" = "$want" ] || fail "calls:
$got
want:
$want"
}
expect_err_has() { grep -qF -- "$1" <<<"$err" || fail "stderr lacks '$1'; stderr: $err"; }
expect_err_lacks() { ! grep -qiE -- "$1" <<<"$err" || fail "stderr mentions /$1/; stderr: $err"; }
expect_silent() { [ -z "$out$err" ] || fail "printed something: stdout '$out' stderr '$err'"; }
expect_untouched() {
	[ ! -e "$t/repo/tests/reflection/node_modules" ] || [ "${1:-}" = fresh ] ||
		fail "node_modules appeared (the fake npm creates nothing)"
}

# --- nothing installed, root, no npm: update, then install exactly all ------
setup nothing_root
FAKE_UID=0 run
expect_rc 0
expect_actions \
	"apt-get update -qq [DEBIAN_FRONTEND=noninteractive]" \
	"apt-get install -y -qq --no-install-recommends ${ALL[*]} nodejs npm [DEBIAN_FRONTEND=noninteractive]" \
	"npm $LOCK_ARGS [cwd=$t/repo]"
expect_err_has "missing Debian packages: ${ALL[*]} nodejs npm"
expect_untouched

# --- some installed (one removed with its config left: "rc"), npm there -----
setup some_root
install_all
have_npm
grep -v -e '^libyaml-dev ' -e '^python3-grpcio ' -e '^g++ ' "$t/installed" >"$t/i2"
echo "libyaml-dev rc" >>"$t/i2"
sed 's/^gcc ii$/gcc:amd64 ii/' "$t/i2" >"$t/installed"
FAKE_UID=0 run
expect_rc 0
expect_actions \
	"apt-get update -qq [DEBIAN_FRONTEND=noninteractive]" \
	"apt-get install -y -qq --no-install-recommends libyaml-dev python3-grpcio g++ [DEBIAN_FRONTEND=noninteractive]" \
	"npm $LOCK_ARGS [cwd=$t/repo]"
expect_err_has "missing Debian packages: libyaml-dev python3-grpcio g++"

# --- all installed, npm there, node_modules current: nothing at all ---------
setup all_fresh
install_all
have_npm
fresh_node_modules
FAKE_UID=1000 run
expect_rc 0
expect_actions
expect_silent

# --- all installed, node_modules absent: npm ci only, nothing about installing
setup all_no_modules
install_all
have_npm
FAKE_UID=1000 run
expect_rc 0
expect_actions "npm $LOCK_ARGS [cwd=$t/repo]"
expect_err_lacks "missing|apt-get|install"

# --- all installed, the lockfile newer than node_modules: npm ci again -------
setup all_stale
install_all
have_npm
fresh_node_modules
touch -d '2000-01-01' "$t/repo/tests/reflection/node_modules/.package-lock.json"
touch "$t/repo/tests/reflection/package-lock.json"
FAKE_UID=0 run
expect_rc 0
expect_actions "npm $LOCK_ARGS [cwd=$t/repo]"

# --- not root, packages missing: names them, says sudo, installs nothing -----
setup not_root
install_all
have_npm
grep -v -e '^libcmocka-dev ' -e '^grpc-proto ' "$t/installed" >"$t/i2" && mv "$t/i2" "$t/installed"
FAKE_UID=1000 run
expect_nonzero
expect_actions
expect_err_has "libcmocka-dev grpc-proto"
expect_err_has "sudo apt-get install libcmocka-dev grpc-proto"
expect_untouched

# --- not root, nothing installed, no npm: nodejs npm named too ---------------
setup not_root_nothing
FAKE_UID=1000 run
expect_nonzero
expect_actions
expect_err_has "sudo apt-get install ${ALL[*]} nodejs npm"

# --- --only PKG...: just those; never npm (not even when npm is absent) ------
setup only_missing
FAKE_UID=0 run --only clang libclang-rt-14-dev
expect_rc 0
expect_actions \
	"apt-get update -qq [DEBIAN_FRONTEND=noninteractive]" \
	"apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev [DEBIAN_FRONTEND=noninteractive]"
grep -q '^dpkg-query -W .* clang libclang-rt-14-dev$' "$t/calls" || fail "dpkg-query was not asked about just the --only packages: $(cat "$t/calls")"

setup only_present
echo "clang ii" >"$t/installed"
FAKE_UID=1000 run --only clang
expect_rc 0
expect_actions
expect_silent

setup only_not_root
echo "clang ii" >"$t/installed"
FAKE_UID=1000 run --only clang libclang-rt-14-dev
expect_nonzero
expect_actions
expect_err_has "sudo apt-get install libclang-rt-14-dev"
expect_err_lacks "nodejs"

# --- failures are reported, not ignored ------------------------------------
setup update_fails
FAKE_UID=0 FAKE_APT_FAIL=update run --only clang
expect_nonzero
expect_actions "apt-get update -qq [DEBIAN_FRONTEND=noninteractive]"
expect_err_has "apt-get update failed"

setup install_fails
FAKE_UID=0 FAKE_APT_FAIL=install run --only clang
expect_nonzero
expect_err_has "apt-get install failed for: clang"

setup no_dpkg
rm "$t/bin/dpkg-query"
FAKE_UID=0 run
expect_nonzero
expect_actions
expect_err_has "dpkg-query not found"

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed" >&2
	exit 1
fi
echo "deps_test: all cases passed"
