"""Single-process Watch: SNAPSHOT first, STATE_CHANGED events, sequences (SPEC §3, §11).

Targets here write no output, so every sequence number is a state entered:
PENDING = 1, then each later state the next number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

# Sequence of the last event reflected by a process in STATE, for a process that
# went PENDING -> RUNNING -> terminal and wrote no output.
SEQ_OF_STATE = {"PENDING": 1, "RUNNING": 2, "SUCCEEDED": 3, "FAILED": 3, "CANCELED": 3}


class WatchTest(h.E2ETest):

    def assertSequenceRules(self, events):
        """SPEC §11 for a Watch with after_sequence 0 of an output-free process."""
        self.assertTrue(events, "no events")
        ctx = "\n" + h.show_events(events)
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT", "first event" + ctx)
        self.assertFalse(events[0].gap, ctx)
        for ev in events[1:]:
            self.assertEqual(h.event_type(ev), "STATE_CHANGED", ctx)
        for ev in events:
            self.assertTrue(ev.HasField("process"), ctx)
            self.assertEqual(ev.process_id or ev.process.id, events[0].process.id, ctx)
        seqs = [ev.sequence for ev in events]
        self.assertGreaterEqual(seqs[0], 1, "SNAPSHOT carries the sequence of the last event it reflects" + ctx)
        for a, b in zip(seqs, seqs[1:]):
            self.assertEqual(b, a + 1, "no output: each state takes the next number" + ctx)
        for ev in events:
            st = h.state(ev.process)
            want = SEQ_OF_STATE[st]
            if h.is_terminal(ev.process) and not ev.process.ran:
                want = 2  # PENDING -> terminal, never RUNNING
            self.assertEqual(ev.sequence, want, "sequence of a %s event%s" % (st, ctx))
        self.assertTrue(h.is_terminal(events[-1].process), "last event is terminal" + ctx)
        for ev in events[:-1]:
            self.assertFalse(h.is_terminal(ev.process), "only the last event is terminal" + ctx)

    def test_watch_finished_process(self):
        s = self.server()
        p = s.run("echo", input=b"payload")
        events = s.watch_all_events(p.id)
        self.assertEqual(len(events), 1, "exactly one SNAPSHOT, then the stream ends OK:\n" + h.show_events(events))
        ev = events[0]
        self.assertEqual(h.event_type(ev), "SNAPSHOT")
        self.assertState(ev.process, "SUCCEEDED")
        self.assertEqual(ev.process.result, b"payload", "SNAPSHOT carries the result")
        self.assertEqual(ev.sequence, 3, "PENDING=1, RUNNING=2, SUCCEEDED=3:\n" + h.show_events(events))
        # Twice: a watch does not consume anything.
        again = s.watch_all_events(p.id)
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0].sequence, 3)

    def test_watch_running_process(self):
        s = self.server()
        started = s.start_process("sleep", "500")
        events = s.watch_all_events(started.id)
        self.assertSequenceRules(events)
        self.assertIn(h.state(events[0].process), ("PENDING", "RUNNING"),
                      "the 500 ms sleep was still running at the SNAPSHOT:\n" + h.show_events(events))
        self.assertGreaterEqual(len(events), 2)
        end = events[-1].process
        self.assertState(end, "SUCCEEDED")
        self.assertEqual(events[-1].sequence, 3)
        for ev in events:
            if h.state(ev.process) == "RUNNING":
                self.assertGreater(ev.process.pid, 0)

    def test_watch_destroyed_process(self):
        s = self.server()
        started = s.start_process("sleep")
        call = s.watch(started.id)
        first = next(call)
        self.assertEqual(h.event_type(first), "SNAPSHOT")
        s.destroy(started.id)
        events = h.drain(call, events=[first])
        self.assertSequenceRules(events)
        self.assertState(events[-1].process, "CANCELED")

    def test_watch_failed_process_carries_error(self):
        s = self.server()
        started = s.start_process("fail", "KeyError", "nope")
        events = s.watch_all_events(started.id)
        self.assertSequenceRules(events)
        end = events[-1].process
        self.assertState(end, "FAILED")
        self.assertKind(end, "RAISED")
        self.assertEqual(end.error.type, "KeyError")

    def test_watch_launch_failure_sequence(self):
        s = self.server(h.minimal_config({
            "missing": "{exec: [%s]}" % h.yaml_str("/nonexistent/spawnd-e2e-no-such-binary"),
        }))
        started = s.start_process("missing")
        events = s.watch_all_events(started.id)
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT")
        end = events[-1]
        self.assertState(end.process, "FAILED")
        self.assertKind(end.process, "LAUNCH")
        self.assertEqual(end.sequence, 2, "PENDING=1 -> FAILED=2 (no RUNNING):\n" + h.show_events(events))

    def test_watch_output_tails_only_on_snapshot_and_terminal(self):
        s = self.server()
        started = s.start_process("spew", "stdout=100", "stderr=50")
        events = s.watch_all_events(started.id)
        ctx = "\n" + h.show_events(events)
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT", ctx)
        for ev in events[1:]:
            self.assertIn(h.event_type(ev), ("STATE_CHANGED",), "no OUTPUT without include_output" + ctx)
        seqs = [ev.sequence for ev in events]
        self.assertEqual(seqs, sorted(set(seqs)), "strictly increasing" + ctx)
        for ev in events[1:-1]:
            self.assertEqual(ev.process.stdout_tail, b"", "non-terminal STATE_CHANGED has no tails" + ctx)
            self.assertEqual(ev.process.stderr_tail, b"", ctx)
        self.assertEqual(len(events[-1].process.stdout_tail), 100, ctx)
        self.assertEqual(len(events[-1].process.stderr_tail), 50, ctx)

    def test_two_watchers_same_events(self):
        s = self.server()
        started = s.start_process("sleep", "300")
        a = s.watch(started.id)
        b = s.watch(started.id)
        ea, eb = h.drain(a), h.drain(b)
        self.assertSequenceRules(ea)
        self.assertSequenceRules(eb)
        self.assertEqual(ea[-1].sequence, eb[-1].sequence)
        self.assertEqual(h.state(ea[-1].process), h.state(eb[-1].process))

    def test_watch_cancel_by_client(self):
        s = self.server()
        started = s.start_process("sleep")
        call = s.watch(started.id)
        next(call)
        call.cancel()
        # The server copes with the vanished watcher and keeps serving.
        d = s.destroy(started.id, wait=True)
        self.assertState(d, "CANCELED")
        self.assertServing(s)

    def test_watch_unknown_id(self):
        s = self.server()
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.watch_all_events,
                            "01890a5d-ac96-774b-bcce-b302099a8057")
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
