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
grep '^listen:' "$tmp/cm-sidecar.yaml" | grep -q '"0.0.0.0\|tcp' && fail "the sidecar config listens on TCP"
grep -q 'kind: Secret' "$k8s/configmap.yaml" || fail "no Secret for the certificates"
grep -q 'defaultMode: 0440' "$k8s/deployment.yaml" || fail "the Secret is not mounted 0440"
for m in deployment sidecar; do
	grep -q 'fsGroup:' "$k8s/$m.yaml" || fail "$m.yaml has no fsGroup"
	grep -q 'mountPath: /run/spawnd' "$k8s/$m.yaml" || fail "$m.yaml mounts nothing on /run/spawnd"
done
grep -q 'restartPolicy: Always' "$k8s/sidecar.yaml" || fail "the sidecar is not a native sidecar"

# Metrics (issue 10): both configs serve them on the port the pods announce
# with the usual scrape annotations, and name as a container port.
for c in spawnd sidecar; do
	grep -q '^metrics: {listen: "0.0.0.0:9464"}' "$tmp/cm-$c.yaml" || fail "cm $c.yaml sets no metrics.listen on 9464"
done
for m in deployment sidecar; do
	grep -q 'prometheus.io/scrape: "true"' "$k8s/$m.yaml" || fail "$m.yaml: no prometheus.io/scrape annotation"
	grep -q 'prometheus.io/port: "9464"' "$k8s/$m.yaml" || fail "$m.yaml: no prometheus.io/port annotation"
	grep -q 'prometheus.io/path: /metrics' "$k8s/$m.yaml" || fail "$m.yaml: no prometheus.io/path annotation"
	grep -q '{name: metrics, containerPort: 9464}' "$k8s/$m.yaml" || fail "$m.yaml: no metrics container port"
done

# The Grafana dashboard: valid JSON, a dashboard whose every query names only
# metrics spawnd exports (SPEC §12), with a panel for each of the README's five
# operations queries.
if ! /usr/bin/python3 - "$deploy/grafana" "$root/README.md" <<'PY'; then
import glob, json, os, re, sys
gdir, readme = sys.argv[1], sys.argv[2]
known = {
    "spawnd_processes_started_total", "spawnd_processes_ended_total", "spawnd_processes_running",
    "spawnd_processes_pending", "spawnd_process_start_latency_seconds_bucket",
    "spawnd_process_duration_seconds_bucket", "spawnd_watchers", "spawnd_zygote_restarts_total",
    "spawnd_launcher_up", "spawnd_store_commit_seconds_bucket", "spawnd_store_errors_total",
    "grpc_server_started_total", "grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
    "process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total",
    "process_start_time_seconds", "spawnd_launcher_resident_memory_bytes",
    "spawnd_launcher_open_fds", "spawnd_launcher_cpu_seconds_total",
}
files = sorted(glob.glob(os.path.join(gdir, "*.json")))
if not files:
    sys.exit("no dashboard in deploy/grafana")
exprs = []
for path in files:
    with open(path) as f:
        d = json.load(f)
    if not d.get("title") or not isinstance(d.get("panels"), list) or not d["panels"]:
        sys.exit("%s: not a Grafana dashboard (title, panels)" % path)
    for p in d["panels"]:
        for t in p.get("targets", []):
            exprs.append(t["expr"])
def names(e):
    e = re.sub(r'\{[^}]*\}', '', e)
    e = re.sub(r'\[[^\]]*\]', '', e)
    return {w for w in re.findall(r'[a-z_][a-z0-9_]*', e)
            if w.startswith(("spawnd_", "grpc_server_", "process_"))}
for e in exprs:
    unknown = names(e) - known
    if unknown:
        sys.exit("dashboard query names unknown metrics %s: %s" % (sorted(unknown), e))
with open(readme) as f:
    text = f.read()
m = re.search(r"```promql\n(.*?)```", text, re.S)
if not m:
    sys.exit("README has no promql block of operations queries")
queries = [l for l in m.group(1).splitlines() if l.strip() and not l.startswith("#")]
if len(queries) != 5:
    sys.exit("README's operations block has %d queries, not 5" % len(queries))
norm = lambda q: re.sub(r'\s+', '', re.sub(r'\{[^}]*\}|\[[^\]]*\]', '', q))
dash = {norm(e) for e in exprs}
for q in queries:
    if norm(q) not in dash:
        sys.exit("README query has no dashboard panel: %s" % q)
PY
	fail "the Grafana dashboard or the README's operations queries"
fi
for m in deployment sidecar; do
	grep -q 'mountPath: /var/lib/spawnd' "$k8s/$m.yaml" || fail "$m.yaml mounts no volume for the store"
done
grep -q 'persistentVolumeClaim: {claimName: spawnd-store}' "$k8s/deployment.yaml" || fail "the Deployment's store is not on a PersistentVolumeClaim"
grep -q 'type: Recreate' "$k8s/deployment.yaml" || fail "the Deployment can run two pods on one store (not Recreate)"
grep -q 'EXPOSE 50051' "$deploy/Dockerfile" || fail "the image EXPOSEs no port"
grep -q "libmicrohttpd12" "$deploy/Dockerfile" || fail "the image lacks libmicrohttpd12 (the metrics listener)"
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
