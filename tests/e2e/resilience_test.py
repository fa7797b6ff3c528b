"""No orphans: spawnd or its launcher killed with SIGKILL (SPEC §2, §11)."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402


class ResilienceTest(h.E2ETest):

    def running(self, s, target, *args):
        p = s.start_process(target, *args)
        return h.wait_until(lambda: (lambda q: q if q.pid > 0 and h.state(q) == "RUNNING" else None)(s.get(p.id)),
                            h.RPC_TIMEOUT, "%s to be RUNNING" % target)

    def test_launcher_is_a_direct_child(self):
        s = self.server()
        launcher = s.launcher_pid()
        info = h.proc_info(launcher)
        self.assertEqual(info.ppid, s.pid)
        self.assertEqual(info.comm, "spawnd-launcher")
        # A function target is a child of the launcher, in its own process group.
        p = self.running(s, "sleep")
        child = h.proc_info(p.pid)
        self.assertIsNotNone(child, "pid %d of the running sleep not in /proc" % p.pid)
        self.assertEqual(child.ppid, launcher, repr(child))
        self.assertEqual(child.pgrp, p.pid, "each child leads its own process group: %r" % child)
        s.destroy(p.id, wait=True)

    def test_kill9_spawnd_kills_everything(self):
        s = self.server()
        launcher = s.launcher_pid()
        tree = self.running(s, "tree")
        kids = h.wait_until(lambda: (lambda d: d if len(d) >= 4 else None)(h.descendants(tree.pid)),
                            h.RPC_TIMEOUT, "tree's 4 descendants")
        sleeper = self.running(s, "sleep")
        watched = [launcher, tree.pid, sleeper.pid] + kids
        self.assertEqual(h.descendants_alive(watched), watched)
        s.kill9()
        s.wait_exit(h.RPC_TIMEOUT)
        s.wait_nothing_spawned(include_server=True,
                               what="the launcher, every child and grandchild to die after SIGKILL of spawnd")
        # Also by pid (outside Bazel's sandbox, spawned() cannot attribute a
        # process that is half-way through exiting).
        h.wait_gone(watched, what="the launcher and the targets' processes to die")

    def test_kill9_launcher_ends_processes_lost(self):
        s = self.server(expect_status="nonzero")
        launcher = s.launcher_pid()
        sleeper = self.running(s, "sleep")
        tree = self.running(s, "tree")
        kids = h.wait_until(lambda: (lambda d: d if len(d) >= 4 else None)(h.descendants(tree.pid)),
                            h.RPC_TIMEOUT, "tree's 4 descendants")
        call = s.watch(sleeper.id, timeout=h.RPC_TIMEOUT * 2)
        first = next(call)
        self.assertEqual(h.event_type(first), "SNAPSHOT")
        self.assertState(first.process, "RUNNING")
        os.kill(launcher, signal.SIGKILL)
        events = h.drain(call, events=[first])  # must end OK after the terminal event
        end = events[-1].process
        self.assertState(end, "FAILED", "after the launcher died:\n%s\n" % h.show_events(events))
        self.assertKind(end, "LOST")
        self.assertFlags(end, threw=True, destroyed=False, canceled=False)
        self.assertFalse(end.error.oom_suspected)
        status = s.wait_exit(h.STOP_TIMEOUT)
        self.assertNotEqual(status, 0, "spawnd exits non-zero when its launcher died")
        s.wait_nothing_spawned(include_server=True,
                               what="every child and grandchild to die after the launcher was SIGKILLed")
        h.wait_gone([launcher, sleeper.pid, tree.pid] + kids, what="the launcher and the targets' processes to die")

    def test_sigterm_with_running_tree(self):
        # Graceful shutdown destroys what runs; the harness then checks exit
        # status 0 and that nothing survives.
        s = self.server()
        tree = self.running(s, "tree")
        h.wait_until(lambda: len(h.descendants(tree.pid)) >= 4, h.RPC_TIMEOUT, "tree's 4 descendants")
        self.running(s, "sleep")
        s.stop()


if __name__ == "__main__":
    h.main()
