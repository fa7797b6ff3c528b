#!/usr/bin/env bash
# deploy/ as shipped: every YAML file parses; every spawnd config in it (the
# image's, the ConfigMap's) passes `spawnd --check-config`; the manifests keep
# the properties a deployment relies on (no plaintext TCP API, a Secret for
# certificates, fsGroup for the shared socket, a native sidecar); the systemd
# unit stops spawnd the way it needs.
set -uo pipefail
spawnd=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$root/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# Every YAML document parses; the ConfigMap's configs come out as files.
if ! /usr/bin/python3 - "$deploy" "$tmp" <<'PY'; then
import glob, os, sys, yaml
deploy, out = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(os.path.join(deploy, "**", "*.yaml"), recursive=True)):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        sys.exit("%s: no YAML document" % path)
    for d in docs:
        if d.get("kind") == "ConfigMap":
            for key, text in d["data"].items():
                yaml.safe_load(text)
                with open(os.path.join(out, "cm-" + key), "w") as f:
                    f.write(text)
PY
	fail "a YAML file in deploy/ does not parse"
fi
# The store's directory is the pod's volume; here a temporary one stands in.
mkdir -p "$tmp/var-lib-spawnd"
for cfg in "$deploy/spawnd.yaml" "$tmp"/cm-*; do
	[ -e "$cfg" ] || { fail "no config found ($cfg)"; continue; }
	sed "s|/var/lib/spawnd/|$tmp/var-lib-spawnd/|g" "$cfg" >"$tmp/checked.yaml"
	out=$("$spawnd" --check-config "$tmp/checked.yaml" 2>&1) || fail "spawnd --check-config $(basename "$cfg"): $out"
done
for c in spawnd sidecar; do
	grep -q 'store: {path: /var/lib/spawnd/' "$tmp/cm-$c.yaml" || fail "the $c config keeps no store on /var/lib/spawnd"
done
[ -e "$tmp/cm-spawnd.yaml" ] && [ -e "$tmp/cm-sidecar.yaml" ] || fail "the ConfigMap lacks spawnd.yaml or sidecar.yaml"

k8s=$deploy/kubernetes
grep -q 'tls: {cert:' "$tmp/cm-spawnd.yaml" || fail "the standalone config serves TCP without TLS"
grep -q '"0.0.0.0\|tcp' "$tmp/cm-sidecar.yaml" && fail "the sidecar config listens on TCP"
grep -q 'kind: Secret' "$k8s/configmap.yaml" || fail "no Secret for the certificates"
grep -q 'defaultMode: 0440' "$k8s/deployment.yaml" || fail "the Secret is not mounted 0440"
for m in deployment sidecar; do
	grep -q 'fsGroup:' "$k8s/$m.yaml" || fail "$m.yaml has no fsGroup"
	grep -q 'mountPath: /run/spawnd' "$k8s/$m.yaml" || fail "$m.yaml mounts nothing on /run/spawnd"
done
grep -q 'restartPolicy: Always' "$k8s/sidecar.yaml" || fail "the sidecar is not a native sidecar"
for m in deployment sidecar; do
	grep -q 'mountPath: /var/lib/spawnd' "$k8s/$m.yaml" || fail "$m.yaml mounts no volume for the store"
done
grep -q 'persistentVolumeClaim: {claimName: spawnd-store}' "$k8s/deployment.yaml" || fail "the Deployment's store is not on a PersistentVolumeClaim"
grep -q 'type: Recreate' "$k8s/deployment.yaml" || fail "the Deployment can run two pods on one store (not Recreate)"
grep -q 'EXPOSE 50051' "$deploy/Dockerfile" || fail "the image EXPOSEs no port"
grep -q 'mkdir -p /run/spawnd' "$deploy/Dockerfile" || fail "the image does not create /run/spawnd"

unit=$deploy/systemd/spawnd.service
grep -qx 'KillMode=mixed' "$unit" || fail "the unit's KillMode is not mixed"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
grace=$(sed -n 's/^shutdown_grace_period: \([0-9]*\)s$/\1/p' "$deploy/spawnd.yaml")
[ -n "$stop" ] && [ -n "$grace" ] && [ "$stop" -gt "$grace" ] ||
	fail "TimeoutStopSec ($stop) is not above shutdown_grace_period ($grace s)"

if [ $failures -eq 0 ]; then
	echo "deploy_test: 1 passed, 0 failed"
	exit 0
fi
echo "deploy_test: 0 passed, 1 failed ($failures problems)"
exit 1
