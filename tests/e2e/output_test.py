"""Output: OUTPUT events with offsets, tails, no stall without a watcher, and a
slow watcher that never slows a fast one (SPEC §2, §3, §11)."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

MIB = 1024 * 1024


class OutputTest(h.E2ETest):

    def accounted(self, events):
        """Bytes of stdout a watcher can account for: written before it
        subscribed (the first delivered chunk's offset, less what it was told
        it dropped by then), delivered, and dropped in all."""
        outputs = [ev for ev in events if h.event_type(ev) == "OUTPUT"]
        self.assertTrue(outputs, "no OUTPUT event:\n" + h.show_events(events)[:2000])
        before = outputs[0].output.offset - outputs[0].dropped_bytes
        delivered = sum(len(ev.output.data) for ev in outputs)
        return before + delivered + events[-1].dropped_bytes

    def test_output_events_sequence_and_offsets(self):
        # With max_running 1 and a blocker running, spew waits PENDING: the
        # watch subscribes before its first byte, so it must see every chunk.
        s = self.server(h.minimal_config({"spew": "{function: builtin:spew}",
                                          "sleep": "{function: builtin:sleep}"}, extra="max_running: 1"))
        n_out, n_err = 300000, 70000
        blocker = s.start_process("sleep")
        p = s.start_process("spew", "stdout=%d" % n_out, "stderr=%d" % n_err)
        self.assertState(p, "PENDING")
        call = s.watch(p.id, include_output=True)
        first = next(call)
        self.assertEqual(h.event_type(first), "SNAPSHOT")
        self.assertEqual(first.sequence, 1)
        s.destroy(blocker.id)
        events = h.drain(call, events=[first])
        ctx = "\n" + h.show_events(events)[:3000]
        seqs = [ev.sequence for ev in events]
        self.assertEqual(seqs, list(range(1, len(events) + 1)), "every event takes the next number" + ctx)
        self.assertEqual([h.event_type(e) for e in events[:2]], ["SNAPSHOT", "STATE_CHANGED"], ctx)
        self.assertState(events[1].process, "RUNNING")
        self.assertState(events[-1].process, "SUCCEEDED")
        outputs = events[2:-1]
        self.assertTrue(outputs, ctx)
        got = {"STDOUT": 0, "STDERR": 0}
        for ev in outputs:
            self.assertEqual(h.event_type(ev), "OUTPUT", "all OUTPUT precedes the terminal event" + ctx)
            self.assertEqual(ev.dropped_bytes, 0, "nothing dropped" + ctx)
            name = h.pb().OutputChunk.Stream.Name(ev.output.stream).split("_")[-1]
            self.assertEqual(ev.output.offset, got[name], "offsets are contiguous per stream" + ctx)
            got[name] += len(ev.output.data)
        self.assertEqual(got, {"STDOUT": n_out, "STDERR": n_err})

    def test_64mib_stdout_without_watcher_completes(self):
        s = self.server()
        p = s.start_process("spew", "stdout=%d" % (64 * MIB), "result=1024")
        end = s.wait_terminal(p.id, deadline=60)
        self.assertState(end, "SUCCEEDED")
        self.assertEqual(len(end.result), 1024)
        full = s.get(p.id)
        self.assertEqual(len(full.stdout_head) + len(full.stdout_tail), MIB,
                         "head and tail keep max_output_bytes")
        self.assertEqual(full.stdout_head[:64], b"\n" + b"x" * 63, "the head is the first bytes")
        self.assertTrue(full.output_truncated)
        # Each OUTPUT chunk took a sequence number even with nobody watching.
        ev = s.watch_all_events(p.id)[0]
        self.assertGreater(ev.sequence, 3 + 64 * MIB // (64 * 1024))

    def test_slow_watcher_does_not_slow_a_fast_one(self):
        s = self.server()
        p = s.start_process("spew", "stdout=%d" % (32 * MIB))
        slow = s.watch(p.id, timeout=120, include_output=True)
        first = next(slow)  # subscribed; then it reads nothing for a while
        self.assertEqual(h.event_type(first), "SNAPSHOT")
        fast = s.watch_all_events(p.id, deadline=60, include_output=True)
        self.assertState(fast[-1].process, "SUCCEEDED")
        # The child writes far faster than any gRPC client reads, so even a
        # reading watcher may drop some; what it gets plus what it was told it
        # lost is exactly what was written.
        self.assertEqual(self.accounted(fast), 32 * MIB)
        # The process ended while the slow watcher read nothing: spawnd never
        # waited for it.
        self.assertState(s.get(p.id), "SUCCEEDED")
        rest = h.drain(slow, events=[first])
        end = rest[-1]
        self.assertState(end.process, "SUCCEEDED", "state events are never dropped")
        self.assertGreater(end.dropped_bytes, 0, "the slow watcher's output was dropped and counted")
        self.assertEqual(self.accounted(rest), 32 * MIB, "delivered + dropped = written")
        self.assertGreaterEqual(end.dropped_bytes, fast[-1].dropped_bytes,
                                "the watcher that did not read lost at least as much")

    def test_running_snapshot_has_output_so_far(self):
        s = self.server(h.minimal_config({
            "talk": """{exec: ['/bin/sh', '-c', 'echo hello; echo oops >&2; exec sleep 1000']}"""}))
        p = s.start_process("talk")
        got = h.wait_until(lambda: (lambda q: q if q.stdout_tail == b"hello\n" and q.stderr_tail == b"oops\n"
                                    else None)(s.get(p.id)), h.RPC_TIMEOUT, "the output in GetProcess")
        self.assertState(got, "RUNNING")
        self.assertEqual(got.stdout_bytes, 6)
        snap = next(s.watch(p.id))
        self.assertEqual((snap.process.stdout_tail, snap.process.stderr_tail), (b"hello\n", b"oops\n"),
                         "a running process's SNAPSHOT carries its output so far")
        s.destroy(p.id, wait=True)

    def test_resume_without_output_sees_no_gap_for_evicted_output(self):
        s = self.server()
        p = s.run("spew", "stdout=2000000")  # evicts its output events from the ring
        events = s.watch_all_events(p.id, after_sequence=1)
        ctx = "\n" + h.show_events(events)
        self.assertTrue(events, ctx)
        self.assertFalse(any(ev.gap for ev in events), "only output was evicted: no gap" + ctx)
        self.assertEqual([h.event_type(e) for e in events], ["STATE_CHANGED"] * len(events), ctx)
        self.assertEqual([h.state(e.process) for e in events], ["RUNNING", "SUCCEEDED"], ctx)
        with_output = s.watch_all_events(p.id, after_sequence=1, include_output=True)
        self.assertTrue(with_output[0].gap, "with output, the evicted chunks make a gap")


if __name__ == "__main__":
    h.main()
