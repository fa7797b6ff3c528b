"""Pre-started children (SPEC §12, issue 11 item 2): `prestart: N` keeps N
children of a function target forked ahead, set up, each waiting for one
call. Under fork (forked by the launcher) and forkserver (by the target's
zygote), every outcome and Destroy case is what a fresh child gives; the
pool is listed as `idle` and refilled after use; idle children are not
processes (no id, no limit but max_idle) and die on reload, shutdown, and
the loss of their zygote or of the launcher; prestart on a target that
starts fresh is a config error.

A pre-started child is named i:TARGET while it waits (ps tells it from a
running one) and takes its target's name once it has its call: a process
whose pid was an idle one before its start ran in a pre-started child."""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

METHODS = ["fork", "forkserver"]
SAMPLES = ["echo", "fail", "crash", "exit", "sleep", "stubborn", "spew", "whoami"]
N = 2


def config(method, n=N, extra=""):
    targets = {name: "{function: builtin:%s, start_method: %s, prestart: %d}" % (name, method, n)
               for name in SAMPLES}
    targets["timed"] = ("{function: builtin:sleep, start_method: %s, timeout: 300ms, prestart: %d}"
                        % (method, n))
    return h.minimal_config(targets, extra=extra)


def idle_pids(s, target):
    """Pids of TARGET's pre-started children waiting now (comm i:TARGET,
    below the launcher: its own children, or its zygote's)."""
    launcher = s.launcher_pid()
    comm = ("i:" + target)[:15]
    out = set()
    for pid in h.descendants(launcher):
        info = h.proc_info(pid)
        if info is not None and info.comm == comm and info.state != "Z":
            out.add(pid)
    return out


def listed_idle(s):
    return {t.name: t.idle for t in s.stub.ListTargets(h.pb().ListTargetsRequest(),
                                                        timeout=h.RPC_TIMEOUT).targets}


def wait_pool(s, target, n=N):
    """Waits until TARGET has N idle children, in /proc and in ListTargets."""
    return h.wait_until(lambda: len(idle_pids(s, target)) == n and listed_idle(s)[target] == n
                        and idle_pids(s, target), h.RPC_TIMEOUT,
                        "%d idle children of %s" % (n, target))


class PrestartTest(h.E2ETest):

    def each(self, fn, **kw):
        for method in METHODS:
            with self.subTest(start_method=method):
                s = self.server(config(method, **kw))
                fn(s, method)
                s.stop()

    def prestarted(self, s, target, start):
        """Runs START() (which starts one process of TARGET and returns its
        terminal or live Process) once TARGET's pool is full, and checks that
        a pre-started child took it."""
        before = wait_pool(s, target)
        p = start()
        self.assertIn(p.pid, before, "%s ran in a fresh child, not a pre-started one (idle: %r)"
                      % (target, sorted(before)))
        return p

    # -- every outcome, as a fresh child's --------------------------------

    def test_outcomes(self):
        def check(s, method):
            p = self.prestarted(s, "echo", lambda: s.run("echo", "a", "b"))
            self.assertState(p, "SUCCEEDED")
            self.assertEqual(p.result, b"a b")
            self.assertEqual(h.start_method(p.start_method), method.upper())
            self.assertFlags(p, destroyed=False, canceled=False, ran=True, threw=False)
            p = self.prestarted(s, "echo", lambda: s.run("echo", input=b"\x00\xffbytes"))
            self.assertEqual(p.result, b"\x00\xffbytes")

            p = self.prestarted(s, "fail", lambda: s.run("fail", "ValueError", "bad", "thing"))
            self.assertState(p, "FAILED")
            self.assertKind(p, "RAISED")
            self.assertEqual((p.error.type, p.error.message), ("ValueError", "bad thing"))

            p = self.prestarted(s, "exit", lambda: s.run("exit", "7"))
            self.assertKind(p, "EXIT_CODE")
            self.assertEqual(p.exit_code, 7)
            p = self.prestarted(s, "exit", lambda: s.run("exit", "137"))
            self.assertKind(p, "EXIT_CODE")
            self.assertTrue(p.error.oom_suspected)

            p = self.prestarted(s, "crash", lambda: s.run("crash"))
            self.assertKind(p, "SIGNALED")
            self.assertEqual((p.signal, p.error.type, p.exit_code), (11, "SIGSEGV", 0))
            self.assertIn(b"backtrace", p.error.stderr_tail)
            self.assertIn(b"spawnd_sample_crash", p.error.stderr_tail)

            p = self.prestarted(s, "timed", lambda: s.run("timed"))
            self.assertState(p, "FAILED")
            self.assertKind(p, "TIMEOUT")
            self.assertFlags(p, destroyed=False, canceled=False, ran=True)
            self.assertEqual(p.signal, 15)

            p = self.prestarted(s, "spew", lambda: s.run("spew", "stdout=1000", "stderr=10", "result=5"))
            self.assertState(p, "SUCCEEDED")
            full = s.get(p.id)
            self.assertEqual((len(full.stdout_tail), len(full.stderr_tail), len(full.result)),
                             (1000, 10, 5))
            self.assertTrue(p.HasField("usage"))
            # Output and result caps, as for a fresh child.
            p = self.prestarted(s, "spew", lambda: s.run("spew", "result=2000000"))
            self.assertKind(p, "RESULT_TOO_LARGE")
        self.each(check)

    def test_destroy(self):
        def check(s, method):
            p = self.prestarted(s, "sleep", lambda: s.start_process("sleep"))
            info = h.wait_until(lambda: h.proc_info(p.pid), h.RPC_TIMEOUT, "the child in /proc")
            self.assertEqual(info.pgrp, p.pid, "in its own process group")
            h.wait_until(lambda: (h.proc_info(p.pid) or info).comm == "sleep", h.RPC_TIMEOUT,
                         "the child to take its target's name")
            end = s.destroy(p.id, wait=True)
            self.assertState(end, "CANCELED")
            self.assertFlags(end, destroyed=True, canceled=True, ran=True)
            self.assertEqual(end.signal, 15, h.show(end))

            p = self.prestarted(s, "stubborn", lambda: s.start_process("stubborn"))
            h.wait_until(lambda: h.signal_ignored(p.pid, 15), h.RPC_TIMEOUT, "stubborn to ignore SIGTERM")
            end = s.destroy(p.id, wait=True, grace=0.2)
            self.assertState(end, "CANCELED")
            self.assertEqual(end.signal, 9)
            self.assertFalse(end.error.oom_suspected)
            # A timeout's grace from the request, SIGKILL after it.
            p = self.prestarted(s, "stubborn", lambda: s.start_process(
                "stubborn", timeout=0.3, destroy_grace_period=0.2))
            end = s.wait_terminal(p.id)
            self.assertKind(end, "TIMEOUT")
            self.assertEqual(end.signal, 9)
        self.each(check)

    def test_request_overrides_apply_to_a_prestarted_child(self):
        # Every field of a request reaches a pre-started child: none of them
        # is something its setup had to have (child.c applies nothing of the
        # request before the call), so none sends it to a fresh child.
        def check(s, method):
            big = os.urandom(300 * 1024)  # more than a pipe holds: written as it drains
            p = self.prestarted(s, "echo", lambda: s.run(
                "echo", "x", input=big, labels={"team": "a"}, timeout=30,
                destroy_grace_period=1))
            self.assertState(p, "SUCCEEDED")
            self.assertEqual(p.result, big)
            self.assertEqual(dict(p.labels), {"team": "a"})
            # The trace context: TRACEPARENT in its environment (whoami lists
            # `environ`), set once the call came.
            tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            p = self.prestarted(s, "whoami", lambda: s.wait_terminal(s.stub.StartProcess(
                h.pb().StartProcessRequest(target="whoami"), timeout=h.RPC_TIMEOUT,
                metadata=[("traceparent", tp)]).process.id))
            self.assertIn("env TRACEPARENT=" + tp, p.result.decode().splitlines())
            self.assertEqual(p.traceparent, tp)
            p = self.prestarted(s, "sleep", lambda: s.start_process("sleep", timeout=0.2))
            end = s.wait_terminal(p.id)
            self.assertKind(end, "TIMEOUT")
        self.each(check)

    def test_hardened_like_a_fresh_child(self):
        def check(s, method):
            p = self.prestarted(s, "whoami", lambda: s.run("whoami"))
            self.assertState(p, "SUCCEEDED")
            r = {}
            for line in p.result.decode().splitlines():
                k, _, v = line.partition(" ")
                r.setdefault(k, v)
            fds = sorted(int(x) for x in r["fds"].strip(",").split(",") if x)
            self.assertEqual(fds, [0, 1, 2, 3], "stdio and the result channel only (%s)" % method)
            self.assertEqual(r["no_new_privs"], "1")
            self.assertEqual(int(r["uid"]), os.geteuid())
        self.each(check)

    # -- the pool -------------------------------------------------------

    def test_idle_listed_and_refilled(self):
        def check(s, method):
            for target in SAMPLES + ["timed"]:
                wait_pool(s, target)
            before = wait_pool(s, "echo")
            for t in s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT).targets:
                self.assertEqual((t.prestart, t.idle), (N, N), t.name)
                self.assertEqual((t.running, t.pending), (0, 0), "idle children are not processes")
            self.assertEqual(len(s.stub.ListProcesses(h.pb().ListProcessesRequest(),
                                                      timeout=h.RPC_TIMEOUT).processes), 0)
            p = s.run("echo", "once")
            self.assertIn(p.pid, before)
            after = wait_pool(s, "echo")
            self.assertNotIn(p.pid, after, "one call per child")
            self.assertFalse(h.is_alive(p.pid))
            self.assertEqual(len(after & before), N - 1)
            # A burst larger than the pool: the rest start fresh, and run alike.
            pool = wait_pool(s, "sleep")
            ps = [s.start_process("sleep", "300") for _ in range(N + 2)]
            ends = [s.wait_terminal(q.id) for q in ps]
            for e in ends:
                self.assertState(e, "SUCCEEDED")
            pids = {e.pid for e in ends}
            self.assertEqual(len(pids), N + 2)
            self.assertLessEqual(len(pids & pool), N)
            self.assertGreaterEqual(len(pids - pool), 2, "fresh children for the rest")
            wait_pool(s, "sleep")
            if method == "forkserver":
                z = s.zygote_pid("echo")
                for pid in idle_pids(s, "echo"):
                    self.assertEqual(h.proc_info(pid).ppid, z, "forked by the target's zygote")
            else:
                for pid in idle_pids(s, "echo"):
                    self.assertEqual(h.proc_info(pid).ppid, s.launcher_pid())
        self.each(check)

    def test_max_idle_bounds_every_pool(self):
        s = self.server(h.minimal_config({
            "a": "{function: builtin:echo, prestart: 3}",
            "b": "{function: builtin:echo, start_method: forkserver, prestart: 3}",
        }, extra="max_idle: 4"))
        h.wait_until(lambda: sum(listed_idle(s).values()) == 4 and
                     len(idle_pids(s, "a") | idle_pids(s, "b")) == 4, h.RPC_TIMEOUT,
                     "4 idle children")
        # Shared fairly: the shortest pool is filled first.
        self.assertEqual(sorted(listed_idle(s).values()), [2, 2])
        for _ in range(5):
            s.run("a")
            s.run("b")
            self.assertLessEqual(len(idle_pids(s, "a") | idle_pids(s, "b")), 4)
        h.wait_until(lambda: sum(listed_idle(s).values()) == 4, h.RPC_TIMEOUT, "4 idle children")
        # One killed from outside dies idle: replaced after a backoff, and
        # then, every pool as full as max_idle lets it be, the launcher
        # sleeps (a backoff that is over must not make it spin).
        victim = sorted(idle_pids(s, "a"))[0]
        os.kill(victim, signal.SIGKILL)
        h.wait_gone([victim])
        h.wait_until(lambda: sum(listed_idle(s).values()) == 4 and victim not in idle_pids(s, "a"),
                     h.RPC_TIMEOUT, "the pool refilled")

        def cpu(pid):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        launcher = s.launcher_pid()
        c0 = cpu(launcher)
        time.sleep(1.0)
        self.assertLess(cpu(launcher) - c0, 0.3, "the launcher spins while pools wait")

    # -- killed on reload, shutdown, zygote and launcher loss --------------

    def sighup(self, s, text):
        with open(s.config_path, "w") as f:
            f.write(text)
        n = len([r for r in s.log_records() if r.get("msg") == "SIGHUP: config reloaded"])
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: len([r for r in s.log_records()
                                  if r.get("msg") == "SIGHUP: config reloaded"]) > n,
                     h.RPC_TIMEOUT, "the reload")

    def test_reload_kills_the_idle_children_of_changed_and_removed_targets(self):
        def check(s, method):
            spec = "{function: builtin:%s, start_method: %s, prestart: %d%s}"
            text = h.minimal_config({"echo": spec % ("echo", method, N, ""),
                                     "sleep": spec % ("sleep", method, N, ""),
                                     "spew": spec % ("spew", method, N, "")})
            self.sighup(s, text)
            echo0, sleep0, spew0 = wait_pool(s, "echo"), wait_pool(s, "sleep"), wait_pool(s, "spew")
            live = s.start_process("sleep")  # of the old version: it goes on
            self.assertIn(live.pid, sleep0)
            text = h.minimal_config({"echo": spec % ("echo", method, N, ""),
                                     "sleep": spec % ("sleep", method, N, ", timeout: 1h")})
            self.sighup(s, text)
            h.wait_gone(sleep0 - {live.pid}, what="the changed target's idle children")
            h.wait_gone(spew0, what="the removed target's idle children")
            sleep1 = wait_pool(s, "sleep")
            self.assertFalse(sleep1 & sleep0, "the new version's pool is new")
            self.assertEqual(idle_pids(s, "echo"), echo0, "an unchanged target keeps its pool")
            self.assertState(s.get(live.id), "RUNNING")
            end = s.destroy(live.id, wait=True)
            self.assertState(end, "CANCELED")
            self.assertNotIn("spew", listed_idle(s))
        self.each(check)

    def test_shutdown_kills_idle_children(self):
        # At once: no start can take them any more, while a stubborn process
        # still has its grace period.
        def check(s, method):
            pids = wait_pool(s, "echo") | wait_pool(s, "sleep")
            p = self.prestarted(s, "stubborn", lambda: s.start_process("stubborn"))
            h.wait_until(lambda: h.signal_ignored(p.pid, 15), h.RPC_TIMEOUT, "stubborn to ignore SIGTERM")
            os.kill(s.pid, signal.SIGTERM)
            h.wait_gone(pids, timeout=1.5, what="the idle children, as shutdown begins")
            self.assertIsNone(s.proc.poll(), "spawnd waits for the stubborn process's grace")
            self.assertTrue(h.is_alive(p.pid))
            s.stop()
            self.assertFalse(h.descendants_alive(pids | {p.pid}), "outlived spawnd")
        for method in METHODS:
            with self.subTest(start_method=method):
                check(self.server(config(method, extra="shutdown_grace_period: 3s")), method)

    def test_zygote_loss_kills_idle_children(self):
        s = self.server(config("forkserver"))
        before = wait_pool(s, "echo")
        z = s.zygote_pid("echo")
        os.kill(z, signal.SIGKILL)
        h.wait_gone(before, what="the dead zygote's idle children")
        after = wait_pool(s, "echo")
        self.assertFalse(after & before)
        self.assertNotEqual(s.zygote_pid("echo"), z)
        p = self.prestarted(s, "echo", lambda: s.run("echo", "back"))
        self.assertEqual(p.result, b"back")

    def test_launcher_loss_kills_idle_children(self):
        for method in METHODS:
            with self.subTest(start_method=method):
                s = self.server(config(method), expect_status="nonzero")
                pids = wait_pool(s, "echo") | wait_pool(s, "sleep")
                os.kill(s.launcher_pid(), signal.SIGKILL)
                s.wait_exit(h.RPC_TIMEOUT)
                self.assertFalse(h.descendants_alive(pids), "idle children outlived the launcher")
                s.stop()

    # -- config ---------------------------------------------------------

    def check_config(self, text):
        d = tempfile.mkdtemp(prefix="spawnd-e2e-prestart-")
        path = os.path.join(d, "conf.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([h.spawnd_binary(), "--check-config", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30 * h.SLOW)
        os.unlink(path)
        os.rmdir(d)
        return path, r

    def test_prestart_on_a_target_that_starts_fresh_is_a_config_error(self):
        cases = [
            ('targets:\n  t: {exec: ["/bin/true"], prestart: 1}\n', 2, 28,
             "targets.t.prestart: only for function targets"),
            ("targets:\n  t: {function: builtin:echo, start_method: spawn, prestart: 1}\n", 2, 52,
             "targets.t.prestart: only with start_method fork or forkserver"),
            # Inherited from defaults: still the target's key that is wrong.
            ("defaults: {start_method: spawn}\ntargets:\n  t: {function: builtin:echo,\n"
             "      prestart: 0}\n", 4, 7, "targets.t.prestart: only with start_method"),
            ("max_idle: -1\ntargets: {}\n", 1, 11, "max_idle"),
            ("defaults: {prestart: 1}\ntargets: {}\n", 1, 12, "unknown key"),
        ]
        for text, line, col, want in cases:
            with self.subTest(config=text):
                path, r = self.check_config(text)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("%s:%d:%d: " % (path, line, col), r.stderr)
                self.assertIn(want, r.stderr)
        path, r = self.check_config(
            "max_idle: 8\ntargets:\n  t: {function: builtin:echo, start_method: forkserver, prestart: 4}\n")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    h.main()
