"""Memory limits and truthful OOM (SPEC §2 "OOM is never a guess that lies", §5).

Runs outside Bazel's sandbox (tag no-sandbox): the sandbox mounts /sys/fs/cgroup
read-only, and spawnd's per-process memory cgroups need it writable. Where this
machine offers a writable memory cgroup (root, v1 memory hierarchy or a v2 mount
with memory), spawnd must use it; the cgroup cases are skipped, saying why, only
where it offers none.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

SUICIDE = '{exec: ["/bin/sh", "-c", "kill -9 $$"], %s}'

TARGETS = {
    "echo": "{function: builtin:echo}",
    "oom": "{function: builtin:oom, memory_limit: 64MiB}",
    "oom_spawn": "{function: builtin:oom, memory_limit: 64MiB, start_method: spawn}",
    "oom_zygote": "{function: builtin:oom, memory_limit: 64MiB, start_method: forkserver}",
    # Pre-started children wait in their memory cgroup already (SPEC §12).
    "oom_pre": "{function: builtin:oom, memory_limit: 64MiB, prestart: 1}",
    "oom_pre_zygote": "{function: builtin:oom, memory_limit: 64MiB, start_method: forkserver, prestart: 1}",
    "suicide": SUICIDE % "memory_limit: 64MiB",
    "suicide_nolimit": SUICIDE % 'description: "no memory limit"',
    "stubborn": "{function: builtin:stubborn, memory_limit: 64MiB}",
}


def cgroup_expected():
    """Whether spawnd can be expected to get a memory cgroup on this machine."""
    if os.geteuid() != 0:
        return False
    if os.access("/sys/fs/cgroup/memory/cgroup.procs", os.W_OK):
        return True  # a v1 memory hierarchy
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return "memory" in f.read().split()  # a pure v2 host
    except OSError:
        return False


class MemoryTest(h.E2ETest):

    def start(self, **kw):
        return self.server(h.minimal_config(TARGETS), **kw)

    def mechanism_log(self, s):
        """The launcher's startup record saying what enforces memory_limit."""
        recs = h.wait_until(
            lambda: [r for r in s.log_records() if "memory_limit_mechanism" in r],
            h.RPC_TIMEOUT, "the launcher's memory_limit_mechanism log record")
        return recs[0]

    def targets(self, s):
        resp = s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT)
        return {t.name: t for t in resp.targets}

    def cgroup_server(self, **kw):
        """A server that must be using memory cgroups (skips where none is usable)."""
        s = self.start(**kw)
        rec = self.mechanism_log(s)
        mech = rec["memory_limit_mechanism"]
        if mech == "rlimit_as":
            if cgroup_expected():
                self.fail("a memory cgroup is writable here, yet spawnd uses RLIMIT_AS: %s" % rec)
            self.skipTest("no writable memory cgroup here (%s)" % rec.get("reason"))
        self.assertIn(mech, ("cgroup_v2", "cgroup_v1"), rec)
        return s, rec

    # -- what applies, and saying so ---------------------------------------------

    def test_list_targets_and_log_say_the_mechanism(self):
        s, rec = self.cgroup_server()
        mech = rec["memory_limit_mechanism"]
        self.assertTrue(rec.get("cgroup"), "the log names the parent cgroup: %s" % rec)
        self.assertTrue(os.path.isdir(rec["cgroup"]), rec)
        t = self.targets(s)
        self.assertEqual(t["oom"].limits.memory_limit_mechanism, mech, h.show(t["oom"]))
        self.assertEqual(t["suicide"].limits.memory_limit_mechanism, mech)
        self.assertEqual(t["oom_spawn"].limits.memory_limit_mechanism, mech)
        self.assertEqual(t["oom_zygote"].limits.memory_limit_mechanism, mech)
        self.assertEqual(t["echo"].limits.memory_limit_mechanism, "", "no limit, no mechanism")
        # Its cgroups go away with it.
        p = s.run("oom")
        self.assertKind(p, "OOM")
        s.stop()
        self.assertFalse(os.path.exists(rec["cgroup"]), "%s left behind" % rec["cgroup"])

    # -- nothing left behind (issue 9) -------------------------------------------

    @staticmethod
    def start_time(pid):
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])

    def test_cgroup_named_by_instance_and_stale_ones_removed(self):
        s, rec = self.cgroup_server(expect_status="nonzero")
        base, name = os.path.split(rec["cgroup"])
        ns = os.stat("/proc/self/ns/pid").st_ino
        # spawnd-NS-PID-START: unique per spawnd, not a pid that containers share.
        self.assertEqual(name, "spawnd-%d-%d-%d" % (ns, s.pid, self.start_time(s.pid)))
        # A SIGKILLed launcher cannot remove its cgroup: the front does, on
        # its way out (it exits non-zero for its supervisor).
        launcher = s.launcher_pid()
        p = s.start_process("stubborn")
        h.wait_until(lambda: h.state(s.get(p.id)) == "RUNNING", h.RPC_TIMEOUT, "sleep to run")
        os.kill(launcher, 9)
        s.wait_exit(h.STOP_TIMEOUT)
        h.wait_until(lambda: not h.is_alive(p.pid), h.VANISH_TIMEOUT, "the child to die with the launcher")
        self.assertFalse(os.path.exists(rec["cgroup"]), "the killed launcher's cgroup was left")
        # One whose front was SIGKILLed too is left for the next spawnd of this
        # namespace: a gone instance's (a pid that does not run), removed with
        # its per-process cgroups; beside it a live instance's (this test's own
        # identity) and another namespace's, which must be left alone.
        dead = next(pid for pid in range(4000000, 3000000, -1) if not os.path.exists("/proc/%d" % pid))
        stale = os.path.join(base, "spawnd-%d-%d-%d" % (ns, dead, 12345))
        os.mkdir(stale)
        os.mkdir(os.path.join(stale, "p-1"))
        live = os.path.join(base, "spawnd-%d-%d-%d" % (ns, os.getpid(), self.start_time(os.getpid())))
        foreign = os.path.join(base, "spawnd-%d-%d-%d" % (ns + 1, 1, 1))
        for d in (live, foreign):
            os.mkdir(d)
            self.addCleanup(lambda d=d: os.path.isdir(d) and os.rmdir(d))
        s2, rec2 = self.cgroup_server()
        self.assertFalse(os.path.exists(stale), "the stale cgroup of a gone spawnd is left")
        self.assertTrue(os.path.isdir(live), "a live spawnd's cgroup was removed")
        self.assertTrue(os.path.isdir(foreign), "another namespace's cgroup was removed")
        self.assertNotEqual(rec2["cgroup"], rec["cgroup"])

    def test_forced_rlimit_as_is_listed(self):
        s = self.start(env={"SPAWND_MEMORY_LIMIT_MECHANISM": "rlimit_as"})
        self.assertEqual(self.mechanism_log(s)["memory_limit_mechanism"], "rlimit_as")
        t = self.targets(s)
        self.assertEqual(t["oom"].limits.memory_limit_mechanism, "rlimit_as", h.show(t["oom"]))
        self.assertEqual(t["echo"].limits.memory_limit_mechanism, "")

    # -- OOM, confirmed ------------------------------------------------------------------

    def assertOom(self, p):
        self.assertState(p, "FAILED")
        self.assertFlags(p, ran=True, threw=True, destroyed=False, canceled=False)
        self.assertKind(p, "OOM")
        self.assertEqual(p.error.type, "OutOfMemory", h.show(p))
        self.assertFalse(p.error.oom_suspected, "confirmed, not suspected")

    def test_oom_confirmed_by_the_cgroup(self):
        s, _ = self.cgroup_server()
        for target in ("oom", "oom_spawn", "oom_zygote", "oom_pre", "oom_pre_zygote"):
            p = s.run(target, deadline=30 * h.SLOW)
            self.assertOom(p)
            # The kernel's SIGKILL: the signal is still told.
            self.assertEqual(p.signal, 9, h.show(p))
            self.assertEqual(p.error.signal, 9, h.show(p))
            self.assertEqual(p.exit_code, 0)
        self.assertServing(s)

    def test_prestarted_child_waits_in_its_own_memory_cgroup(self):
        s, rec = self.cgroup_server()
        for target in ("oom_pre", "oom_pre_zygote"):
            comm = ("i:" + target)[:15]

            def idle():
                for pid in h.descendants(s.launcher_pid()):
                    info = h.proc_info(pid)
                    if info is not None and info.comm == comm:
                        return pid
                return None
            pid = h.wait_until(idle, h.RPC_TIMEOUT, "a pre-started child of " + target)
            with open("/proc/%d/cgroup" % pid) as f:
                lines = f.read().splitlines()
            mine = [l.split(":", 2)[2] for l in lines
                    if (rec["memory_limit_mechanism"] == "cgroup_v2" and l.startswith("0::"))
                    or ":memory:" in l]
            self.assertEqual(len(mine), 1, lines)
            self.assertRegex(mine[0], r"/p-\d+$", "its own cgroup before any call")
            p = s.run(target, deadline=30 * h.SLOW)
            self.assertEqual(p.pid, pid, "the pre-started child took it")
            self.assertOom(p)
            # Its cgroup goes with it.
            d = rec["cgroup"] + "/" + mine[0].rsplit("/", 1)[1]
            h.wait_until(lambda: not os.path.exists(d), h.RPC_TIMEOUT, "its cgroup to be removed")

    def test_oom_under_rlimit_as(self):
        if h.SANITIZED:
            self.skipTest("ASan cannot run under RLIMIT_AS (it reserves terabytes of address space)")
        s = self.start(env={"SPAWND_MEMORY_LIMIT_MECHANISM": "rlimit_as"})
        p = s.run("oom", deadline=30 * h.SLOW)
        self.assertOom(p)
        # Reported by the function (spawnd_oom), not a kill.
        self.assertEqual(p.signal, 0, h.show(p))

    # -- SIGKILL from elsewhere -------------------------------------------------------------

    def test_self_sigkill_in_a_cgroup_is_not_suspected(self):
        s, _ = self.cgroup_server()
        p = s.run("suicide")
        self.assertState(p, "FAILED")
        self.assertKind(p, "SIGNALED")
        self.assertEqual(p.signal, 9)
        self.assertEqual(p.error.type, "SIGKILL")
        self.assertFalse(p.error.oom_suspected, "the cgroup counted no OOM kill: %s" % h.show(p))

    def test_self_sigkill_without_a_limit_is_suspected(self):
        s = self.start()
        p = s.run("suicide_nolimit")
        self.assertState(p, "FAILED")
        self.assertKind(p, "SIGNALED")
        self.assertEqual(p.signal, 9)
        self.assertTrue(p.error.oom_suspected, "no cgroup: a foreign SIGKILL may be an OOM")

    def test_destroyed_is_canceled_never_oom(self):
        s, _ = self.cgroup_server()
        p = s.start_process("stubborn")
        pid = h.wait_until(lambda: s.get(p.id).pid, h.RPC_TIMEOUT, "stubborn to run")
        h.wait_until(lambda: h.signal_ignored(pid, 15), h.RPC_TIMEOUT, "stubborn to ignore SIGTERM")
        d = s.destroy(p.id, wait=True, grace=0.2)
        self.assertState(d, "CANCELED")
        self.assertFlags(d, destroyed=True, canceled=True, ran=True)
        self.assertEqual(d.signal, 9, "escalated to SIGKILL: %s" % h.show(d))
        self.assertNotEqual(h.kind(d), "OOM")
        self.assertFalse(d.error.oom_suspected)


if __name__ == "__main__":
    h.main()
