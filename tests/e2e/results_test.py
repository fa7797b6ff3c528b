"""How processes end: results, errors, flags (SPEC §2, §4, §11)."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402


def spew_pattern(n):
    """The first N bytes the `spew` sample writes: 'x' with '\\n' every 64 bytes."""
    return bytes(0x0A if i % 64 == 0 else 0x78 for i in range(n))


class ResultsTest(h.E2ETest):

    def assertTimes(self, p):
        for f in ("created_at", "started_at", "ended_at"):
            self.assertTrue(p.HasField(f), "%s unset in %s" % (f, h.show(p)))
        c, s, e = (getattr(p, f).ToNanoseconds() for f in ("created_at", "started_at", "ended_at"))
        self.assertLessEqual(c, s, "created_at <= started_at")
        self.assertLessEqual(s, e, "started_at <= ended_at")

    def assertSucceeded(self, p):
        self.assertState(p, "SUCCEEDED")
        self.assertFlags(p, ran=True, threw=False, destroyed=False, canceled=False)
        self.assertFalse(p.HasField("error"), "a succeeded process has no error: %s" % h.show(p))
        self.assertGreater(p.pid, 0)
        self.assertEqual(p.exit_code, 0)
        self.assertEqual(p.signal, 0)
        self.assertTimes(p)

    def test_echo_input(self):
        s = self.server()
        started = s.start_process("echo", input=b"hello \x00\xff world")
        self.assertIn(h.state(started), ("PENDING", "RUNNING"), h.show(started))
        self.assertTrue(started.id)
        self.assertEqual(started.target, "echo")
        p = s.wait_terminal(started.id)
        self.assertSucceeded(p)
        self.assertEqual(p.result, b"hello \x00\xff world")
        self.assertEqual(h.start_method(p.start_method), "FORK")
        self.assertEqual(p.id, started.id)
        got = s.get(started.id)
        self.assertSucceeded(got)
        self.assertEqual(got.result, b"hello \x00\xff world")

    def test_id_is_uuidv7(self):
        s = self.server()
        ids = [s.start_process("noop").id for _ in range(3)]
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(len(set(ids)), 3)
        for i in ids:
            self.assertState(s.wait_terminal(i), "SUCCEEDED")

    def test_echo_args(self):
        s = self.server()
        p = s.run("echo", "a", "b", "c")
        self.assertSucceeded(p)
        self.assertEqual(p.result, b"a b c")
        self.assertEqual(list(p.args), ["a", "b", "c"])

    def test_running_has_pid(self):
        s = self.server()
        started = s.start_process("sleep", "200")
        if h.state(started) == "RUNNING":
            self.assertGreater(started.pid, 0, h.show(started))
        p = s.wait_terminal(started.id)
        self.assertSucceeded(p)

    def test_noop(self):
        s = self.server()
        p = s.run("noop")
        self.assertSucceeded(p)
        self.assertEqual(p.result, b"")
        self.assertEqual(h.start_method(p.start_method), "FORK")

    def test_labels_are_kept(self):
        s = self.server()
        p = s.run("noop", labels={"team": "e2e", "k": ""})
        self.assertEqual(dict(p.labels), {"team": "e2e", "k": ""})

    def test_fail_raises(self):
        s = self.server()
        p = s.run("fail", "ValueError", "bad", "thing")
        self.assertState(p, "FAILED")
        self.assertFlags(p, ran=True, threw=True, destroyed=False, canceled=False)
        self.assertKind(p, "RAISED")
        self.assertEqual(p.error.type, "ValueError")
        self.assertEqual(p.error.message, "bad thing")
        self.assertTimes(p)

    def test_crash(self):
        s = self.server()
        p = s.run("crash")
        self.assertState(p, "FAILED")
        self.assertFlags(p, ran=True, threw=True, destroyed=False, canceled=False)
        self.assertKind(p, "SIGNALED")
        self.assertEqual(p.signal, 11)
        self.assertEqual(p.error.signal, 11)
        self.assertEqual(p.error.type, "SIGSEGV")
        self.assertEqual(p.exit_code, 0, "exit_code is set only on a normal exit")
        self.assertFalse(p.error.oom_suspected)

    def test_exit_code(self):
        s = self.server()
        p = s.run("exit", "7")
        self.assertState(p, "FAILED")
        self.assertFlags(p, ran=True, threw=True)
        self.assertKind(p, "EXIT_CODE")
        self.assertEqual(p.exit_code, 7)
        self.assertEqual(p.error.exit_code, 7)
        self.assertEqual(p.signal, 0)
        self.assertFalse(p.error.oom_suspected)

    def test_exec_exit3(self):
        s = self.server()
        p = s.run("exit3")
        self.assertState(p, "FAILED")
        self.assertFlags(p, ran=True, threw=True, destroyed=False, canceled=False)
        self.assertKind(p, "EXIT_CODE")
        self.assertEqual(p.exit_code, 3)
        self.assertEqual(p.signal, 0)
        self.assertEqual(h.start_method(p.start_method), "SPAWN")

    def test_exec_true(self):
        s = self.server()
        p = s.run("true")
        self.assertSucceeded(p)
        self.assertEqual(h.start_method(p.start_method), "SPAWN")

    def test_exec_launch_failure(self):
        missing = "/nonexistent/spawnd-e2e-no-such-binary"
        s = self.server(h.minimal_config({
            "missing": "{exec: [%s]}" % h.yaml_str(missing),
            "echo": "{function: builtin:echo}",
        }))
        started = s.start_process("missing")
        self.assertIn(h.state(started), ("PENDING", "FAILED"),
                      "a launch failure goes PENDING -> FAILED: %s" % h.show(started))
        p = s.wait_terminal(started.id)
        self.assertState(p, "FAILED")
        self.assertKind(p, "LAUNCH")
        self.assertFlags(p, ran=False, threw=True, destroyed=False, canceled=False)
        self.assertEqual(p.pid, 0)
        self.assertIn("No such file or directory", p.error.message, h.show(p))
        self.assertServing(s)

    def test_library_function(self):
        lib = h.samples_library()
        s = self.server(h.minimal_config({
            "echo_lib": "{function: {library: %s, symbol: spawnd_sample_echo}}" % h.yaml_str(lib),
        }))
        p = s.run("echo_lib", input=b"from the shared object")
        self.assertSucceeded(p)
        self.assertEqual(p.result, b"from the shared object")
        p = s.run("echo_lib", "x", "y")
        self.assertEqual(p.result, b"x y")

    def test_output_tails(self):
        s = self.server()
        started = s.start_process("spew", "stdout=100", "stderr=50")
        events = s.watch_all_events(started.id)
        term = events[-1].process
        self.assertSucceeded(term)
        got = s.get(started.id)
        for where, p in (("terminal event", term), ("GetProcess", got)):
            self.assertEqual(p.stdout_tail, spew_pattern(100), "stdout_tail in " + where)
            self.assertEqual(p.stderr_tail, spew_pattern(50), "stderr_tail in " + where)
            self.assertFalse(p.output_truncated, where)

    def test_timeout(self):
        s = self.server()
        t0 = time.monotonic()
        p = s.run("sleep", timeout=0.2)
        elapsed = time.monotonic() - t0
        self.assertState(p, "FAILED")
        self.assertKind(p, "TIMEOUT")
        self.assertFlags(p, ran=True, threw=True, destroyed=False, canceled=False)
        self.assertFalse(p.error.oom_suspected)
        # sleep (forever) ended by its timeout, and not before it.
        self.assertGreaterEqual(elapsed, 0.2, "the 200 ms timeout fired early")

    def test_timeout_escalates_after_grace(self):
        s = self.server()
        t0 = time.monotonic()
        p = s.run("stubborn", timeout=0.2, destroy_grace_period=0.2)
        elapsed = time.monotonic() - t0
        self.assertState(p, "FAILED")
        self.assertKind(p, "TIMEOUT")
        self.assertFlags(p, destroyed=False, canceled=False)
        self.assertFalse(p.error.oom_suspected, "spawnd's own SIGKILL is never OOM")
        # stubborn ignores the timeout's SIGTERM: the SIGKILL after the grace
        # ended it, not before timeout + grace.
        self.assertEqual(p.signal, signal.SIGKILL, h.show(p))
        self.assertGreaterEqual(elapsed, 0.4, "timeout 200 ms + grace 200 ms")

    def test_result_too_large(self):
        s = self.server()
        p = s.run("spew", "result=%d" % ((1 << 20) + 1))
        self.assertState(p, "FAILED")
        self.assertKind(p, "RESULT_TOO_LARGE")
        self.assertFlags(p, ran=True, threw=True)
        self.assertServing(s)

    def test_result_from_spew(self):
        s = self.server()
        p = s.run("spew", "result=200000")
        self.assertSucceeded(p)
        self.assertEqual(p.result, spew_pattern(200000))


if __name__ == "__main__":
    h.main()
