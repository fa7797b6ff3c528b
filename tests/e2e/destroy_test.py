"""Destroy: grace periods, flags, process trees, idempotency (SPEC §2, §11)."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402


#: The targets' destroy_grace_period in the default config (config/default.yaml).
TARGET_GRACE = 10.0


class DestroyTest(h.E2ETest):

    def running(self, s, target, *args):
        """Starts TARGET and waits until it is RUNNING with a pid; returns the Process."""
        started = s.start_process(target, *args)
        if h.state(started) == "RUNNING" and started.pid > 0:
            return started

        def up():
            p = s.get(started.id)
            return p if h.state(p) == "RUNNING" and p.pid > 0 else None

        return h.wait_until(up, h.RPC_TIMEOUT, "%s to be RUNNING" % target, interval=0.02)

    def assertCanceled(self, p):
        self.assertState(p, "CANCELED")
        self.assertFlags(p, destroyed=True, canceled=True, ran=True, threw=False)

    def test_destroy_racing_a_normal_exit_is_truthful(self):
        """Destroy right after start of a quick echo (SPEC §12 "Destroy and
        canceled"): when the child had already exited on its own, the record
        is SUCCEEDED with its result, destroyed=true, canceled=false; CANCELED
        only when the destroy's signal ended it (echo does not catch signals,
        so it then shows the signal). Under all three start methods."""
        s = self.server(h.minimal_config({
            "echo_fork": "{function: builtin:echo}",
            "echo_forkserver": "{function: builtin:echo, start_method: forkserver, zygote_start: boot}",
            "echo_spawn": "{function: builtin:echo, start_method: spawn}",
        }, extra="max_running: 256"))
        rounds = 100 if not h.SANITIZED else 40
        for target in ("echo_fork", "echo_forkserver", "echo_spawn"):
            ids = []
            for i in range(rounds):
                p = s.start_process(target, "word%d" % i)
                s.destroy(p.id)
                ids.append((p.id, "word%d" % i))
            seen = {"SUCCEEDED": 0, "CANCELED": 0}
            for pid, word in ids:
                p = h.wait_until(lambda: (lambda q: q if h.is_terminal(q) else None)(s.get(pid)),
                                 h.RPC_TIMEOUT, "%s %s to end" % (target, pid), interval=0.02)
                self.assertTrue(p.destroyed, h.show(p))
                st = h.state(p)
                self.assertIn(st, seen, h.show(p))
                seen[st] += 1
                if st == "SUCCEEDED":
                    self.assertFalse(p.canceled, h.show(p))
                    self.assertEqual(p.result, word.encode(), h.show(p))
                    self.assertEqual(p.exit_code, 0)
                else:
                    self.assertTrue(p.canceled, h.show(p))
                    # The destroy ended it: by its signal, or before it ran.
                    self.assertTrue(p.signal in (signal.SIGTERM, signal.SIGKILL) or not p.ran,
                                    "CANCELED but it exited on its own: %s" % h.show(p))

    def test_destroy_sleep_forever(self):
        s = self.server()
        p = self.running(s, "sleep")
        t0 = time.monotonic()
        d = s.destroy(p.id, wait=True)
        elapsed = time.monotonic() - t0
        self.assertCanceled(d)
        # sleep honours SIGTERM: SIGTERM ended it, so Destroy did not wait for
        # the grace period and its SIGKILL.
        self.assertEqual(d.signal, signal.SIGTERM, h.show(d))
        self.assertLess(elapsed, TARGET_GRACE, "Destroy(wait) waited for the grace period")
        self.assertFalse(h.is_alive(p.pid), "pid %d still alive after Destroy(wait)" % p.pid)
        self.assertEqual(p.pid, d.pid)
        self.assertFalse(d.error.oom_suspected)
        self.assertCanceled(s.get(p.id))
        # The watch after the end is one SNAPSHOT with the same terminal state.
        events = s.watch_all_events(p.id)
        self.assertEqual(len(events), 1, h.show_events(events))
        self.assertCanceled(events[0].process)

    def stubborn_running(self, s):
        p = self.running(s, "stubborn")
        # It must have ignored SIGTERM before we destroy it, or the grace period
        # is never exercised.
        h.wait_until(lambda: h.signal_ignored(p.pid, signal.SIGTERM), h.RPC_TIMEOUT,
                     "stubborn (pid %d) to ignore SIGTERM" % p.pid)
        return p

    def test_destroy_stubborn_grace_wait(self):
        s = self.server()
        p = self.stubborn_running(s)
        t0 = time.monotonic()
        d = s.destroy(p.id, wait=True, grace=0.3)
        elapsed = time.monotonic() - t0
        self.assertCanceled(d)
        self.assertTrue(d.HasField("ended_at"))
        self.assertFalse(d.error.oom_suspected, "spawnd's own SIGKILL is never OOM")
        self.assertNotEqual(h.kind(d) if d.HasField("error") else "", "OOM")
        # SIGTERM is ignored: the SIGKILL at the end of the grace period ended
        # it, not before the request's 300 ms, and well before the target's 10 s.
        self.assertEqual(d.signal, signal.SIGKILL, h.show(d))
        self.assertGreaterEqual(elapsed, 0.3, "SIGKILL came before the 300 ms grace period")
        self.assertLess(elapsed, TARGET_GRACE, "the target's grace, not the request's, was used")
        self.assertFalse(h.is_alive(p.pid))

    def test_destroy_stubborn_no_wait(self):
        s = self.server()
        p = self.stubborn_running(s)
        # The grace is long enough that "before the end" does not depend on how
        # fast a loaded machine answers: the child ignores SIGTERM, so it cannot
        # end before the SIGKILL that follows the grace period.
        d = s.destroy(p.id, wait=False, grace=2.0 * h.SLOW)
        self.assertTrue(d.destroyed, h.show(d))
        self.assertFalse(h.is_terminal(d), "wait=false answers at once, before the end: %s" % h.show(d))
        end = s.wait_terminal(p.id)
        self.assertCanceled(end)
        self.assertEqual(end.signal, signal.SIGKILL, h.show(end))
        self.assertFalse(h.is_alive(p.pid))

    def test_destroy_grace_from_start_request(self):
        s = self.server()
        started = s.start_process("stubborn", destroy_grace_period=0.3)
        h.wait_until(lambda: s.get(started.id).pid > 0, h.RPC_TIMEOUT, "a pid")
        pid = s.get(started.id).pid
        h.wait_until(lambda: h.signal_ignored(pid, signal.SIGTERM), h.RPC_TIMEOUT, "SIGTERM ignored")
        t0 = time.monotonic()
        d = s.destroy(started.id, wait=True)
        elapsed = time.monotonic() - t0
        self.assertCanceled(d)
        # StartProcess's destroy_grace_period (300 ms) replaced the target's 10 s.
        self.assertEqual(d.signal, signal.SIGKILL, h.show(d))
        self.assertGreaterEqual(elapsed, 0.3, "SIGKILL came before the 300 ms grace period")
        self.assertLess(elapsed, TARGET_GRACE, "the target's grace, not the request's, was used")

    def test_destroy_grace_zero_kills_at_once(self):
        s = self.server()
        p = self.stubborn_running(s)
        t0 = time.monotonic()
        d = s.destroy(p.id, wait=True, grace=0)
        elapsed = time.monotonic() - t0
        self.assertCanceled(d)
        # Grace 0 is SIGKILL at once (SPEC §2), not "none": the target's 10 s
        # grace was not used, and SIGKILL (SIGTERM is ignored) ended it.
        self.assertEqual(d.signal, signal.SIGKILL, h.show(d))
        self.assertLess(elapsed, TARGET_GRACE, "grace 0 waited for the target's grace period")

    def tree_pids(self, s, leader):
        """Waits until the tree leader has its 2 children and 2 grandchildren."""
        def four():
            d = h.descendants(leader)
            return d if len(d) >= 4 else None
        return h.wait_until(four, h.RPC_TIMEOUT, "tree (pid %d) to have 4 descendants" % leader)

    def test_destroy_tree(self):
        s = self.server()
        launcher = s.launcher_pid()
        p = self.running(s, "tree")
        kids = self.tree_pids(s, p.pid)
        # The grandchild exists before it calls setsid(): wait for it to.
        def sids():
            got = {h.proc_info(k).session for k in kids if h.proc_info(k)}
            return got if len(got) > 1 else None
        h.wait_until(sids, h.RPC_TIMEOUT, "one grandchild to call setsid()")
        s.destroy(p.id)
        end = s.wait_terminal(p.id)
        self.assertCanceled(end)
        # The terminal event comes after the tree is cleaned up (SPEC §11).
        alive = h.descendants_alive([p.pid] + kids)
        left = s.spawned()
        if alive or left:
            try:
                s.wait_nothing_spawned()
                late = "they vanished later: the terminal event came before the cleanup"
            except AssertionError as e:
                late = str(e)
            self.fail("after the terminal event, still alive: %s (tree pids %s); %s"
                      % (list(left.values()), alive, late))
        self.assertTrue(h.is_alive(launcher), "the launcher survives")

    def test_tree_leader_exits(self):
        s = self.server()
        started = s.start_process("tree", "200")
        end = s.wait_terminal(started.id)
        self.assertState(end, "SUCCEEDED")
        self.assertFlags(end, ran=True, threw=False, destroyed=False, canceled=False)
        self.assertIn(b"tree: 2 children and 2 grandchildren started", end.stdout_tail)
        left = s.spawned()
        if left:
            try:
                s.wait_nothing_spawned()
                late = "they vanished later: the terminal event came before the cleanup"
            except AssertionError as e:
                late = str(e)
            self.fail("after the leader exited and the terminal event, still alive: %s; %s"
                      % (list(left.values()), late))

    def test_destroy_after_end(self):
        s = self.server()
        p = s.run("echo", input=b"done")
        self.assertState(p, "SUCCEEDED")
        d = s.destroy(p.id)
        self.assertState(d, "SUCCEEDED")
        self.assertFlags(d, destroyed=True, canceled=False, ran=True, threw=False)
        self.assertEqual(d.result, b"done")
        d2 = s.destroy(p.id, wait=True)
        self.assertState(d2, "SUCCEEDED")
        self.assertFlags(d2, destroyed=True, canceled=False)
        g = s.get(p.id)
        self.assertState(g, "SUCCEEDED")
        self.assertFlags(g, destroyed=True, canceled=False, ran=True, threw=False)

    def test_destroy_failed_keeps_error(self):
        s = self.server()
        p = s.run("exit", "7")
        d = s.destroy(p.id, wait=True)
        self.assertState(d, "FAILED")
        self.assertFlags(d, destroyed=True, canceled=False, threw=True)
        self.assertKind(d, "EXIT_CODE")

    def test_destroy_twice_while_running(self):
        s = self.server()
        p = self.running(s, "sleep")
        first = s.destroy(p.id)
        self.assertTrue(first.destroyed)
        second = s.destroy(p.id, wait=True)
        self.assertCanceled(second)
        third = s.destroy(p.id)
        self.assertCanceled(third)

    def test_shutdown_cancels_running(self):
        s = self.server()
        p = self.running(s, "sleep")
        call = s.watch(p.id, timeout=h.STOP_TIMEOUT)
        first = next(call)
        self.assertEqual(h.event_type(first), "SNAPSHOT")
        os.kill(s.pid, signal.SIGTERM)
        events = h.drain(call, events=[first])  # the stream must end OK after the terminal event
        end = events[-1].process
        self.assertCanceled(end)
        self.assertEqual(s.wait_exit(h.STOP_TIMEOUT), 0, "exit status after SIGTERM")


if __name__ == "__main__":
    h.main()
