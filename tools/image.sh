#!/usr/bin/env bash
# Builds the image spawnd:dev (deploy/Dockerfile) with whichever engine works:
# podman (preferred; installed from Debian if missing), else docker.
#   tools/image.sh [TAG]        build (binaries from bazel-bin: `make image` builds them)
#   tools/image.sh --engine     print the engine command that works, or fail saying why
#   tools/image.sh --run-flags  print the flags a `run` needs on this machine
# Without a registry (these machines), the base image debian:bookworm-slim is
# made locally with debootstrap from the host's Debian mirror.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "image: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# The container's process limit: the host's hard one, but runc refuses one
# above 32768 here (podman's default is higher still).
nproc_limit() {
	local h
	h=$(ulimit -Hu)
	if [ "$h" = unlimited ] || [ "$h" -gt 32768 ]; then echo 32768; else echo "$h"; fi
}

# podman as it works here (shared/notes/containers.md): runc (crun rejects
# hybrid cgroups), cgroupfs, file events; the open-files limit of the host,
# since podman's default 1048576 may be above the hard limit.
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
ULIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$(nproc_limit):$(nproc_limit)")

engine() {
	if command -v podman >/dev/null 2>&1 && "${PODMAN[@]}" info >/dev/null 2>&1; then
		echo podman
	elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		echo docker
	else
		return 1
	fi
}

find_engine() {
	local e
	if e=$(engine); then
		echo "$e"
		return 0
	fi
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "no working podman or docker: installing podman from Debian"
		tools/deps.sh --only podman runc debootstrap >&2 || return 1
		engine
		return
	fi
	return 1
}

mirror() {
	local m
	m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
		grep -v security | head -1)
	[ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}

# debian:bookworm-slim, pulled where a registry answers, else made here.
base_image() {
	local e=$1 b
	if [ "$e" = podman ]; then
		"${PODMAN[@]}" image exists debian:bookworm-slim && return 0
	else
		docker image inspect debian:bookworm-slim >/dev/null 2>&1 && return 0
		docker pull debian:bookworm-slim >&2 && return 0
	fi
	command -v debootstrap >/dev/null 2>&1 || tools/deps.sh --only debootstrap >&2 || return 1
	b=$(mktemp -d)
	say "making debian:bookworm-slim with debootstrap from $(mirror)"
	if ! debootstrap --variant=minbase bookworm "$b" "$(mirror)" >"$b.log" 2>&1; then
		tail -20 "$b.log" >&2
		rm -rf "$b" "$b.log"
		return 1
	fi
	cp /etc/apt/sources.list.d/debian.sources "$b/etc/apt/sources.list.d/" 2>/dev/null || true
	rm -f "$b/etc/apt/sources.list" "$b/etc/resolv.conf"
	rm -rf "$b/var/lib/apt/lists/"*
	if [ "$e" = podman ]; then
		tar --numeric-owner -C "$b" -c . | "${PODMAN[@]}" import --change 'CMD ["bash"]' - debian:bookworm-slim >&2
	else
		tar --numeric-owner -C "$b" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >&2
	fi
	local rc=$?
	rm -rf "$b" "$b.log"
	return $rc
}

if [ "${1:-}" = "--run-flags" ]; then
	e=$(engine) || exit 0
	[ "$e" = podman ] && echo "${ULIMITS[*]}"
	exit 0
fi
if [ "${1:-}" = "--engine" ]; then
	e=$(find_engine) || die "no container engine works here (podman info and docker info both fail)"
	if [ "$e" = podman ]; then echo "${PODMAN[*]}"; else echo docker; fi
	exit 0
fi

tag=${1:-spawnd:dev}
e=$(find_engine) || die "no container engine works here (podman info and docker info both fail)"
files=(bazel-bin/service/front/spawnd bazel-bin/service/front/spawnd-worker
	bazel-bin/tools/spawnctl/spawnctl bazel-bin/service/target/libspawnd_samples.so)
# The plain build (bazel-bin may hold the sanitizer build's last outputs).
"${BAZEL:-bazel}" build //service/front:spawnd //service/front:spawnd-worker //tools/spawnctl \
	//service/target:libspawnd_samples.so >&2 || die "bazel build failed"
for f in "${files[@]}"; do
	[ -e "$f" ] || die "$f is missing after the build"
done
base_image "$e" || die "cannot make the base image debian:bookworm-slim"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -L "${files[@]}" deploy/spawnd.yaml "$ctx/"
say "building $tag with $e"
if [ "$e" = podman ]; then
	"${PODMAN[@]}" build --network host "${ULIMITS[@]}" -f deploy/Dockerfile -t "$tag" "$ctx" >&2
else
	docker build --network host -f deploy/Dockerfile -t "$tag" "$ctx" >&2
fi || die "the build of $tag failed"
say "built $tag"
