"""The same targets behave identically under every start method (issue 3):
fork (from the launcher), forkserver (from the target's zygote), spawn (a fresh
exec of spawnd-worker); and a zygote that dies is restarted."""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

METHODS = ["fork", "forkserver", "spawn"]
SAMPLES = ["echo", "fail", "crash", "exit", "sleep", "stubborn", "tree", "spew"]


def config(method, zygote_start="first_use", extra=""):
    targets = {name: "{function: builtin:%s, start_method: %s, zygote_start: %s}" % (name, method, zygote_start)
               for name in SAMPLES}
    targets["timed"] = "{function: builtin:sleep, start_method: %s, timeout: 300ms}" % method
    targets["libecho"] = "{function: {library: %s, symbol: spawnd_sample_echo}, start_method: %s}" % (
        h.yaml_str(h.samples_library()), method)
    return h.minimal_config(targets)


class StartMethodsTest(h.E2ETest):

    def each(self, fn):
        for method in METHODS:
            with self.subTest(start_method=method):
                s = self.server(config(method))
                fn(s, method)
                s.stop()

    def test_result(self):
        def check(s, method):
            for target in ("echo", "libecho"):
                p = s.run(target, "a", "b")
                self.assertState(p, "SUCCEEDED")
                self.assertEqual(p.result, b"a b")
                self.assertEqual(h.start_method(p.start_method), method.upper())
                self.assertEqual(s.run(target, input=b"\x00\xffbytes").result, b"\x00\xffbytes")
        self.each(check)

    def test_raised(self):
        def check(s, method):
            p = s.run("fail", "ValueError", "bad", "thing")
            self.assertState(p, "FAILED")
            self.assertKind(p, "RAISED")
            self.assertEqual((p.error.type, p.error.message), ("ValueError", "bad thing"))
        self.each(check)

    def test_crash_has_backtrace(self):
        def check(s, method):
            p = s.run("crash")
            self.assertKind(p, "SIGNALED")
            self.assertEqual((p.signal, p.error.type, p.exit_code), (11, "SIGSEGV", 0))
            self.assertIn(b"backtrace", p.error.stderr_tail)
            self.assertIn(b"spawnd_sample_crash", p.error.stderr_tail)
        self.each(check)

    def test_exit_code(self):
        def check(s, method):
            p = s.run("exit", "7")
            self.assertKind(p, "EXIT_CODE")
            self.assertEqual(p.exit_code, 7)
        self.each(check)

    def test_output(self):
        def check(s, method):
            p = s.run("spew", "stdout=1000", "stderr=10", "result=5")
            self.assertState(p, "SUCCEEDED")
            full = s.get(p.id)
            self.assertEqual((len(full.stdout_tail), len(full.stderr_tail), len(full.result)), (1000, 10, 5))
        self.each(check)

    def test_destroy(self):
        def check(s, method):
            p = s.start_process("sleep")
            t0 = time.monotonic()
            end = s.destroy(p.id, wait=True)
            self.assertState(end, "CANCELED")
            self.assertFlags(end, destroyed=True, canceled=True, ran=True)
            # sleep honours SIGTERM: it ended it, before the grace period and
            # its SIGKILL (10 s in the default config).
            self.assertEqual(end.signal, 15, h.show(end))
            self.assertLess(time.monotonic() - t0, 10.0, "Destroy waited for the grace period")
            p = s.start_process("stubborn")
            # Destroy once it ignores SIGTERM (a spawn worker takes a moment to
            # reach the function), so that SIGKILL after the grace is what ends it.
            h.wait_until(lambda: h.signal_ignored(p.pid, 15), h.RPC_TIMEOUT, "stubborn to ignore SIGTERM")
            end = s.destroy(p.id, wait=True, grace=0.2)
            self.assertState(end, "CANCELED")
            self.assertEqual(end.signal, 9)
            self.assertFalse(end.error.oom_suspected)
        self.each(check)

    def test_destroy_pending_never_starts(self):
        def check(s, method):
            blocker = s.start_process("sleep")
            p = s.start_process("echo", "never")
            self.assertState(p, "PENDING")
            end = s.destroy(p.id, wait=True)
            self.assertState(end, "CANCELED")
            self.assertFlags(end, destroyed=True, canceled=True, ran=False)
            self.assertEqual((end.pid, end.result), (0, b""))
            s.destroy(blocker.id, wait=True)
        for method in METHODS:
            with self.subTest(start_method=method):
                s = self.server(h.minimal_config(
                    {"sleep": "{function: builtin:sleep, start_method: %s}" % method,
                     "echo": "{function: builtin:echo, start_method: %s}" % method},
                    extra="max_running: 1"))
                check(s, method)
                s.stop()

    def test_timeout(self):
        def check(s, method):
            p = s.run("timed")
            self.assertState(p, "FAILED")
            self.assertKind(p, "TIMEOUT")
            self.assertFlags(p, destroyed=False, canceled=False, ran=True)
            self.assertEqual(p.signal, 15)
        self.each(check)

    def test_usage_and_exit_137(self):
        def check(s, method):
            p = s.run("exit", "137")
            self.assertKind(p, "EXIT_CODE")
            self.assertEqual(p.exit_code, 137)
            self.assertTrue(p.error.oom_suspected, "the seed's OOM exit code: suspected only")
            p = s.run("spew", "stdout=2000000")
            self.assertTrue(p.HasField("usage"))
            self.assertGreater(p.usage.max_rss_bytes, 0)
            self.assertGreater(p.usage.user_cpu.nanos + p.usage.system_cpu.nanos +
                               p.usage.user_cpu.seconds + p.usage.system_cpu.seconds, 0)
        self.each(check)

    def test_tree_normal_exit_leaves_nothing(self):
        def check(s, method):
            p = s.run("tree", "300")
            self.assertState(p, "SUCCEEDED")
            s.wait_nothing_spawned(what="the tree's descendants to be gone after it exited (%s)" % method)
        self.each(check)

    def test_tree_leaves_nothing(self):
        def check(s, method):
            p = s.start_process("tree")
            h.wait_until(lambda: len(h.descendants(s.get(p.id).pid)) >= 4, h.RPC_TIMEOUT, "tree's 4 descendants")
            s.destroy(p.id, wait=True)
            s.wait_nothing_spawned(what="the tree to be gone after destroy (%s)" % method)
        self.each(check)



    def target_health(self, s, name):
        for t in s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT).targets:
            if t.name == name:
                return h.pb().Target.Health.Name(t.health).split("_", 1)[-1]
        raise AssertionError("no target " + name)

    def test_zygote_at_boot_and_its_children(self):
        s = self.server(config("forkserver", zygote_start="boot"))
        z = s.zygote_pid("sleep")  # started before any request
        p = s.start_process("sleep")
        child = h.wait_until(lambda: h.proc_info(p.pid), h.RPC_TIMEOUT, "the child in /proc")
        self.assertEqual(child.ppid, z, "a forkserver child is forked by its target's zygote")
        self.assertEqual(child.pgrp, p.pid, "in its own process group")
        s.destroy(p.id, wait=True)

    def test_zygote_death_loses_children_and_restarts(self):
        s = self.server(config("forkserver"))
        p = s.start_process("sleep")
        z = s.zygote_pid("sleep")
        call = s.watch(p.id, timeout=h.RPC_TIMEOUT * 2)
        self.assertEqual(h.event_type(next(call)), "SNAPSHOT")
        os.kill(z, 9)
        end = h.drain(call)[-1].process
        self.assertState(end, "FAILED")
        self.assertKind(end, "LOST")
        self.assertFlags(end, destroyed=False, canceled=False)
        # The reason is given, not an empty message.
        self.assertIn("zygote", end.error.message)
        self.assertIn("sleep", end.error.message)
        # Restarted after a backoff; meanwhile the target may report NOT_SERVING.
        h.wait_until(lambda: self.target_health(s, "sleep") == "SERVING" and
                     s.zygote_pid("sleep") != z, h.RPC_TIMEOUT, "the zygote to be back")
        q = s.run("echo", "again")
        self.assertEqual(q.result, b"again")
        p2 = s.start_process("sleep", "100")
        self.assertState(s.wait_terminal(p2.id), "SUCCEEDED")
        s.wait_nothing_spawned(what="the lost child to be gone")

    def zygote_that_stays_down(self, zygote_wait):
        """A forkserver `echo` from a copy of the samples library, whose zygote
        is killed after the copy was removed: it cannot come back until the
        copy is restored. Returns (server, library path, original path)."""
        tmp = tempfile.mkdtemp(prefix="spawnd-zygote-")
        self.addCleanup(shutil.rmtree, tmp, True)
        lib = os.path.join(tmp, "libsamples.so")
        shutil.copy(h.samples_library(), lib)
        s = self.server(h.minimal_config({
            "echo": "{function: {library: %s, symbol: spawnd_sample_echo}, start_method: forkserver, "
                    "zygote_start: boot, zygote_wait: %s}" % (h.yaml_str(lib), zygote_wait)}))
        z = s.zygote_pid("echo")
        os.unlink(lib)
        os.kill(z, 9)
        h.wait_until(lambda: self.target_health(s, "echo") == "NOT_SERVING", h.RPC_TIMEOUT,
                     "the zygote to be down")
        return s, lib

    def test_start_while_the_zygote_is_down_waits_pending(self):
        s, lib = self.zygote_that_stays_down("60s")
        p = s.start_process("echo", "patient")
        self.assertState(p, "PENDING")
        # Still waiting, not failed, while the zygote cannot start.
        self.assertState(s.get(p.id), "PENDING")
        shutil.copy(h.samples_library(), lib)
        end = s.wait_terminal(p.id, deadline=h.RPC_TIMEOUT * 6)
        self.assertState(end, "SUCCEEDED")
        self.assertEqual(end.result, b"patient")

    def test_start_fails_when_the_zygote_stays_down_past_zygote_wait(self):
        s, _ = self.zygote_that_stays_down("1s")
        p = s.start_process("echo", "in vain")
        self.assertState(p, "PENDING")
        end = s.wait_terminal(p.id)
        self.assertState(end, "FAILED")
        self.assertKind(end, "LAUNCH")
        self.assertFlags(end, ran=False)
        self.assertIn("zygote of target echo", end.error.message)
        self.assertIn("zygote_wait", end.error.message)


if __name__ == "__main__":
    h.main()
