"""Peers that do not keep up (issue 7, defects 2 and 5).

- Watch clients that never read: each watcher's queue is bounded in bytes
  (SPEC §12 "Slow watchers"): output is dropped first and counted in
  `dropped_bytes`; state events are never dropped, and a watcher they alone
  would take past its bound is ended with RESOURCE_EXHAUSTED, after which the
  client resumes. The front's memory stays bounded, however much is produced.
- A launcher that does not read its socket (SIGSTOP): the front never blocks
  on it under the registry lock, so GetProcess and health keep answering, and
  repeated Destroy calls of one process do not each send a frame.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402
import std_services as std  # noqa: E402

MIB = 1024 * 1024

# Mirrors service/rpc/call.h: the per-watcher bound on queued bytes.
STREAM_QUEUE_BYTES = 16 * MIB

# A client connection that reads nothing on its own: no BDP probing, so its
# HTTP/2 window stays at the initial 64 KiB and what the client does not read
# waits in spawnd.
STUCK_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * MIB),
]


def vm_rss(pid):
    """The resident set of PID in bytes (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


class SlowWatchersTest(h.E2ETest):

    def server_env(self):
        # ASan holds freed memory in a 256 MiB quarantine by default: that is
        # the sanitizer's, not spawnd's, so keep it small here.
        if not h.SANITIZED:
            return {}
        return {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"}

    def spew_all(self, s, n, per_stream=MIB, result=MIB):
        """Runs N spew processes (stdout, stderr and result of the given sizes)
        two at a time, each to its end; returns their ids."""
        ids = []
        for i in range(0, n, 2):
            batch = [s.start_process("spew", "stdout=%d" % per_stream, "stderr=%d" % per_stream,
                                     "result=%d" % result) for _ in range(min(2, n - i))]
            for p in batch:
                end = h.wait_until(lambda: (lambda q: q if h.is_terminal(q) else None)(s.get(p.id)),
                                   h.RPC_TIMEOUT * 3, "spew %s to end" % p.id)
                self.assertState(end, "SUCCEEDED")
                ids.append(p.id)
        return ids

    def test_never_reading_watchers_stay_bounded_then_resume(self):
        s = self.server(h.minimal_config(
            {"spew": "{function: builtin:spew}"},
            # Few records kept: what the history itself holds stays small.
            "history: {max_records: 4, retention: 1h}"), env=self.server_env())
        # Warm up: the history full of 3 MiB records, allocator arenas in use.
        self.spew_all(s, 6)
        base = vm_rss(s.pid)

        nwatchers, nproc = 4, 30
        channels, calls = [], []
        for i in range(nwatchers):
            ch = grpc.insecure_channel(s.address, options=STUCK_OPTIONS)
            channels.append(ch)
            self.addCleanup(ch.close)
            stub = h.ProcessStub(ch)
            # Opened, never iterated while the processes run.
            calls.append(stub.Watch(h.pb().WatchRequest(include_output=(i % 2 == 0)),
                                    timeout=600 * h.SLOW))
        # The watch-all subscriptions exist once a process's PENDING reaches
        # them; wait until the front has them all (spawnd_watchers would do,
        # without metrics: a started process's events reach every stream).
        for ch in channels:
            grpc.channel_ready_future(ch).result(timeout=h.RPC_TIMEOUT)

        ids = self.spew_all(s, nproc)
        grown = vm_rss(s.pid) - base
        # Each stuck watcher may hold its bound, plus one message in flight and
        # one taken while nothing else was queued (a terminal event: 1 MiB
        # result and two 1 MiB tails); 64 MiB for the rest (gRPC's buffers,
        # the registry's ring of output events, allocator slack). Without a
        # byte bound, every terminal event waits in every stream:
        # 4 x 30 x 3 MiB = 360 MiB, and the output events besides.
        bound = nwatchers * (STREAM_QUEUE_BYTES + 2 * 3 * MIB) + 64 * MIB
        sys.stderr.write("front RSS: %.0f MiB before the watchers, grew by %.0f MiB (bound %.0f MiB)\n"
                         % (base / MIB, grown / MIB, bound / MIB))
        self.assertLess(grown, bound,
                        "front RSS grew by %.0f MiB with %d never-reading watchers over %d processes"
                        " of 3 MiB (bound %.0f MiB)" % (grown / MIB, nwatchers, nproc, bound / MIB))

        # Now a stuck watcher reads: what it had received, then the end the
        # rules say (state events alone exceeded its bound).
        seen = {}
        with self.assertRaises(grpc.RpcError) as cm:
            for ev in calls[0]:
                seen[ev.process_id] = ev.sequence
        err = cm.exception
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, err.details())
        self.assertIn("resume with after_sequence", err.details() or "")

        # It resumes: each process from the last event it saw (or from the
        # start), to its terminal event, without a gap for retained ones.
        for pid in ids[-3:]:
            after = seen.get(pid, 0)
            events = s.watch_all_events(pid, after_sequence=after) if after else s.watch_all_events(pid)
            self.assertTrue(events, "resumed Watch(%s, after_sequence=%d) sent nothing" % (pid, after))
            self.assertTrue(h.is_terminal(events[-1].process), h.show_events(events))
            self.assertState(events[-1].process, "SUCCEEDED")
            for ev in events:
                if h.event_type(ev) != "SNAPSHOT":
                    self.assertGreater(ev.sequence, after, h.show_events(events))
        # And a new watch-all works.
        fresh = s.watch("", timeout=h.RPC_TIMEOUT)
        p = s.run("spew", "stdout=10")
        for ev in fresh:
            if ev.process_id == p.id and h.is_terminal(ev.process):
                break
        fresh.cancel()

    def test_output_dropped_and_counted_state_kept(self):
        """A single-process Watch whose client does not read while the process
        writes 32 MiB: output beyond the watcher's share is dropped, the count
        comes in dropped_bytes, and every state event arrives, to OK."""
        s = self.server(h.minimal_config({"spew": "{function: builtin:spew}"}), env=self.server_env())
        total = 32 * MIB
        ch = grpc.insecure_channel(s.address, options=STUCK_OPTIONS)
        self.addCleanup(ch.close)
        stub = h.ProcessStub(ch)
        p = s.start_process("spew", "stdout=%d" % (total - MIB), "stderr=%d" % MIB,
                            "result=%d" % MIB)
        call = stub.Watch(h.pb().WatchRequest(id=p.id, include_output=True), timeout=120 * h.SLOW)
        end = h.wait_until(lambda: (lambda q: q if h.is_terminal(q) else None)(s.get(p.id)),
                           h.RPC_TIMEOUT * 3, "spew to end")
        self.assertState(end, "SUCCEEDED")
        events = h.drain(call, "Watch(%s)" % p.id)
        got = sum(len(ev.output.data) for ev in events if h.event_type(ev) == "OUTPUT")
        last = events[-1]
        self.assertTrue(h.is_terminal(last.process), h.show_events(events))
        self.assertEqual(len(last.process.result), MIB)
        self.assertGreater(last.dropped_bytes, 0, "32 MiB unread, yet nothing dropped")
        self.assertLess(got, total)
        # What came and what was counted as dropped is all of it: the count is
        # on the next delivered event, so the terminal one has every drop.
        # Output written before the subscription is in the SNAPSHOT, not in events.
        snap = events[0].process
        before = snap.stdout_bytes + snap.stderr_bytes
        self.assertEqual(got + last.dropped_bytes, total - before, h.show(snap, 300))
        # dropped_bytes never goes down along the stream.
        counts = [ev.dropped_bytes for ev in events]
        self.assertEqual(counts, sorted(counts))
        # Every state event: the stream starts with a SNAPSHOT and has the terminal one.
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT")


class StalledLauncherTest(h.E2ETest):

    def test_stopped_launcher_does_not_freeze_the_front(self):
        s = self.server()
        health = std.HealthStub(s.channel)
        started = s.start_process("sleep")
        p = h.wait_until(lambda: (lambda q: q if h.state(q) == "RUNNING" and q.pid > 0 else None)(s.get(started.id)),
                         h.RPC_TIMEOUT, "sleep to be RUNNING")
        launcher = s.launcher_pid()
        os.kill(launcher, signal.SIGSTOP)
        stopped = True
        try:
            h.wait_until(lambda: h.proc_info(launcher) is not None and h.proc_info(launcher).state in "tT",
                         h.RPC_TIMEOUT, "the launcher to stop")
            # Starts that cannot run while the launcher is stopped: answered
            # later (or refused UNAVAILABLE if the link were full), never hung.
            starts = [s.stub.StartProcess.future(h.pb().StartProcessRequest(target="echo", input=b"x%d" % i),
                                                 timeout=120 * h.SLOW) for i in range(20)]
            for i in range(1000):
                d = s.destroy(p.id)
                self.assertTrue(d.destroyed)
                if i % 100 == 0:
                    self.assertEqual(h.state(s.get(p.id)), "RUNNING")
            # Destroys that each end the grace sooner do send a frame each:
            # more than the launcher's socket holds (~280 small frames); the
            # front queues them and does not block.
            for i in range(600):
                self.assertTrue(s.destroy(p.id, grace=9.0 - i * 0.01).destroyed)
            # The front still answers within ordinary deadlines.
            self.assertTrue(s.get(p.id).destroyed)
            self.assertEqual(health.check(""), "SERVING")
            self.assertEqual(h.state(s.get(p.id)), "RUNNING")
            os.kill(launcher, signal.SIGCONT)
            stopped = False
        finally:
            if stopped:
                os.kill(launcher, signal.SIGCONT)
        end = s.wait_terminal(p.id, deadline=h.RPC_TIMEOUT * 2)
        self.assertState(end, "CANCELED")
        self.assertFlags(end, destroyed=True, canceled=True)
        for f in starts:
            try:
                r = f.result()
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
                self.assertIn("launcher not responding", e.details())
                continue
            self.assertIn(h.state(r.process), ("RUNNING", "SUCCEEDED"), h.show(r.process))
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
