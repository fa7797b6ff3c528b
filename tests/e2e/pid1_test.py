"""spawnd as PID 1 of its pid namespace, as in a container without --init
(issue 7, defect 11): `unshare --pid --fork --mount-proc spawnd`.

The launcher's "did my parent die?" check compared getppid() with 1, so as
PID 1 spawnd never started. As PID 1 it must also reap (never signal) every
orphan reparented to it, such as what an exec probe leaves behind, and still
take only its own launcher's exit status.

The server runs under a small wrapper (SPAWND_BIN) that starts unshare and
forwards SIGTERM to spawnd (unshare --fork ignores it), so the harness's
lifecycle checks apply unchanged: exit status 0, nothing left behind.
"""

import os
import signal
import stat
import subprocess
import tempfile

import spawnd_harness as h

WRAPPER = r'''#!/usr/bin/python3
import os, signal, subprocess, sys
u = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                      os.environ["SPAWND_E2E_REAL_BIN"]] + sys.argv[1:])
def forward(sig, frame):
    try:
        with open("/proc/%d/task/%d/children" % (u.pid, u.pid)) as f:
            kids = f.read().split()
    except OSError:
        kids = []
    for k in kids:
        os.kill(int(k), sig)
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
rc = u.wait()
if rc < 0:
    signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
'''


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def nspid(pid):
    """The NSpid line of /proc/PID/status: outermost first, innermost last."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def zombies_of(parent):
    out = []
    for name in os.listdir("/proc"):
        info = h.proc_info(int(name)) if name.isdigit() else None
        if info is not None and info.ppid == parent and info.state == "Z":
            out.append(info)
    return out


class Pid1Test(h.E2ETest):
    def pid1_server(self, config):
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=h.RPC_TIMEOUT)
        if r.returncode != 0:
            self.skipTest("cannot make a pid namespace here (needs root): %s"
                          % r.stderr.decode("utf-8", "replace").strip())
        d = tempfile.mkdtemp(prefix="spawnd-pid1-")
        wrapper = os.path.join(d, "spawnd-pid1")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        os.chmod(wrapper, stat.S_IRWXU)
        real = h.spawnd_binary()
        old = os.environ.get("SPAWND_BIN")
        os.environ["SPAWND_BIN"] = wrapper
        try:
            s = self.server(config, env={"SPAWND_E2E_REAL_BIN": real})
        finally:
            if old is None:
                del os.environ["SPAWND_BIN"]
            else:
                os.environ["SPAWND_BIN"] = old

        def front():
            for u in children(s.pid):
                for f in children(u):
                    return f
            return None
        pid = h.wait_until(front, h.RPC_TIMEOUT, "spawnd under unshare")
        self.assertEqual(nspid(pid)[-1:], [1], "spawnd is PID 1 of its namespace")
        return s, pid

    def test_serves_and_reaps_orphans_as_pid1(self):
        s, front = self.pid1_server(h.minimal_config({
            "echo": "{function: builtin:echo}",
            "tree": "{function: builtin:tree}",
        }))
        p = s.run("echo", input=b"as pid 1")
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(p.result, b"as pid 1")

        # An exec probe's leftover: a process started in the namespace whose
        # parent exits is reparented to PID 1, the front.
        r = subprocess.run(
            ["nsenter", "-t", str(front), "-p", "--", "/bin/sh", "-c",
             "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=h.RPC_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        inner = int(r.stdout.split()[0])

        def orphan():
            for pid in h.live_processes():
                ns = nspid(pid)
                if len(ns) >= 2 and ns[-1] == inner and h.proc_info(pid) is not None \
                        and h.proc_info(pid).ppid == front:
                    return pid
            return None
        outer = h.wait_until(orphan, h.RPC_TIMEOUT, "the orphan reparented to spawnd")
        os.kill(outer, signal.SIGKILL)

        def reaped():
            return not os.path.exists("/proc/%d" % outer)
        h.wait_until(reaped, h.RPC_TIMEOUT, "spawnd to reap the orphan (no zombie left)")
        self.assertEqual(zombies_of(front), [], "no zombie child of spawnd")

        # Processes still run and end as before; the launcher is spawnd's.
        p = s.run("tree", "50")
        self.assertState(p, "SUCCEEDED")
        self.assertServing(s)
        s.stop()
        self.assertNotIn("the launcher did not exit cleanly", s.stderr_text())
        self.assertIn("spawnd stopped", s.stderr_text())


if __name__ == "__main__":
    h.main()
