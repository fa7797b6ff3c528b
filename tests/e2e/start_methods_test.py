"""The same targets behave identically under every start method (issue 3):
fork (from the launcher), spawn (a fresh exec of spawnd-worker)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

METHODS = ["fork", "spawn"]
SAMPLES = ["echo", "fail", "crash", "exit", "sleep", "stubborn", "tree", "spew"]


def config(method):
    targets = {name: "{function: builtin:%s, start_method: %s}" % (name, method) for name in SAMPLES}
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
            self.assertLess(time.monotonic() - t0, 3.0)
            p = s.start_process("stubborn")
            # Destroy once it ignores SIGTERM (a spawn worker takes a moment to
            # reach the function), so that SIGKILL after the grace is what ends it.
            h.wait_until(lambda: h.signal_ignored(p.pid, 15), h.RPC_TIMEOUT, "stubborn to ignore SIGTERM")
            end = s.destroy(p.id, wait=True, grace=0.2)
            self.assertState(end, "CANCELED")
            self.assertEqual(end.signal, 9)
            self.assertFalse(end.error.oom_suspected)
        self.each(check)

    def test_tree_leaves_nothing(self):
        def check(s, method):
            p = s.start_process("tree")
            h.wait_until(lambda: len(h.descendants(s.get(p.id).pid)) >= 4, h.RPC_TIMEOUT, "tree's 4 descendants")
            s.destroy(p.id, wait=True)
            s.wait_nothing_spawned(what="the tree to be gone after destroy (%s)" % method)
        self.each(check)


if __name__ == "__main__":
    h.main()
