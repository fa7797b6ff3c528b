"""Shared by tools/soak.py and tools/watchers.py: the e2e harness (server,
generated messages, stubs) and what both measure in /proc.

The harness (tests/e2e/spawnd_harness.py) is imported, not copied: it starts
spawnd on a free loopback port, generates the Python messages with the system
protoc, and writes the stubs. Run the tools with /usr/bin/python3 (Debian's
grpcio and protobuf are installed for it only).
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

# gRPC's fork handlers do not mix with subprocess.Popen from a process that has
# channels open (the harness sets the same default).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import spawnd_harness as h  # noqa: E402

#: The --spawnd default, relative to the repository.
DEFAULT_SPAWND = "bazel-bin/service/front/spawnd"


def use_spawnd(path):
    """Makes the harness run PATH (None: the harness's own lookup, which is
    the runfiles tree under Bazel and REPO/bazel-bin otherwise). Returns the
    absolute path of the binary that will run; exits with a message if absent."""
    if path is not None:
        if not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(REPO, path)
        os.environ["SPAWND_BIN"] = os.path.abspath(path)
    try:
        binary = h.spawnd_binary()
    except FileNotFoundError as e:
        sys.exit("%s; build it: bazel build //service/front:spawnd //service/front:spawnd-worker" % e)
    if not os.access(binary, os.X_OK):
        sys.exit("%s is not an executable; build it: bazel build //service/front:spawnd" % binary)
    return binary


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------


def status_fields(pid):
    """{VmRSS (KiB), Threads} of PID, or None if it is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "VmRSS":
                    out["rss_kib"] = int(value.split()[0])
                elif key == "Threads":
                    out["threads"] = int(value.split()[0])
    except OSError:
        return None
    return out


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def all_processes():
    """{pid: ProcInfo} of every process in /proc, zombies included."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = h.proc_info(int(name))
            if info is not None:
                out[info.pid] = info
    return out


def subtree(root, procs):
    """Every process under ROOT (by parent links now), zombies included when
    PROCS has them."""
    return [procs[p] for p in h.descendants(root, procs)]


def finish(report, as_json, print_report, problems):
    """Prints REPORT (JSON or as text) and returns the exit status: 1 when
    there were PROBLEMS."""
    if as_json:
        print(json.dumps(report, indent=1, sort_keys=True))
    else:
        print_report(report)
    return 1 if problems else 0


def one_process(pid):
    st = status_fields(pid) or {}
    return {"pid": pid, "rss_kib": st.get("rss_kib"), "fds": fd_count(pid), "threads": st.get("threads")}


def measure(server):
    """What the tools compare before and after: the front's and the launcher's
    RSS, fds and threads, the zygotes (children of the launcher named z:...),
    and zombies anywhere under spawnd and among the front's and launcher's
    children."""
    front, launcher = server.pid, server.launcher_pid()
    procs = all_processes()
    tree = subtree(front, procs)
    zombies = [i for i in tree if i.state == "Z"]
    zygotes = [one_process(i.pid) | {"comm": i.comm} for i in tree
               if i.ppid == launcher and i.comm.startswith("z:") and i.state != "Z"]
    return {
        "front": one_process(front),
        "launcher": one_process(launcher),
        "zygotes": sorted(zygotes, key=lambda z: z["comm"]),
        "tree_processes": len(tree),
        "zombies": len(zombies),
        "zombies_children_of_front": sum(1 for i in zombies if i.ppid == front),
        "zombies_children_of_launcher": sum(1 for i in zombies if i.ppid == launcher),
        "zombie_list": [repr(i) for i in zombies[:20]],
    }


def wait_for(pred, timeout, interval=0.05):
    """Polls PRED until truthy or TIMEOUT seconds passed; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def targets_idle(server):
    """True when no target has a running or pending process (ListTargets)."""
    resp = server.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT)
    return all(t.running == 0 and t.pending == 0 for t in resp.targets)


def format_measures(columns):
    """A table of [(label, measure)] columns: front, launcher, zygotes, zombies."""
    labels = [c[0] for c in columns]
    ms = [c[1] for c in columns]
    lines = ["  %-22s" % "" + "".join("%14s" % l for l in labels)]

    def row(title, get):
        vals = []
        for m in ms:
            try:
                v = get(m)
            except (KeyError, IndexError, TypeError):
                v = None
            vals.append("%14s" % ("-" if v is None else v))
        lines.append("  %-22s" % title + "".join(vals))

    for proc in ("front", "launcher"):
        row(proc + " VmRSS KiB", lambda m, p=proc: m[p]["rss_kib"])
        row(proc + " fds", lambda m, p=proc: m[p]["fds"])
        row(proc + " threads", lambda m, p=proc: m[p]["threads"])
    names = sorted({z["comm"] for m in ms for z in m.get("zygotes", [])})
    for n in names:
        row(n + " KiB/fds", lambda m, n=n: next("%d/%d" % (z["rss_kib"], z["fds"])
                                               for z in m["zygotes"] if z["comm"] == n))
    row("processes under spawnd", lambda m: m["tree_processes"])
    row("zombies under spawnd", lambda m: m["zombies"])
    row("  children of front", lambda m: m["zombies_children_of_front"])
    row("  children of launcher", lambda m: m["zombies_children_of_launcher"])
    return "\n".join(lines)
