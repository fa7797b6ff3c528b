"""Watch resume and watch-all, idempotent StartProcess, ListProcesses paging and
filters, history eviction, and the server's resource edges (SPEC §3, §6, §11).

Sequences (§11): each process counts from 1; every state entered and every
OUTPUT chunk takes the next number; a SNAPSHOT carries the number of the last
event it reflects. `after_sequence = N > 0` replays the retained events after N
with no SNAPSHOT, or one SNAPSHOT with gap=true first when some were evicted.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

KIB = 1024
MIB = 1024 * KIB

#: An exec target that writes 50 lines over about a second.
LINES_SCRIPT = "for i in $(seq 1 50); do echo line $i; sleep 0.02; done"
LINES_OUTPUT = b"".join(b"line %d\n" % i for i in range(1, 51))


def lines_config(extra=""):
    return h.minimal_config({
        "lines": "{exec: [\"/bin/sh\", \"-c\", %s], env: {PATH: \"/usr/bin:/bin\"}}"
                 % h.yaml_str(LINES_SCRIPT),
        "echo": "{function: builtin:echo}",
        "noop": "{function: builtin:noop}",
        "sleep": "{function: builtin:sleep}",
        "stubborn": "{function: builtin:stubborn}",
        "spew": "{function: builtin:spew}",
        "fail": "{function: builtin:fail}",
        # Writes 600 kB, then a marker on stderr, then stays alive.
        "quiet_after": "{exec: [\"/bin/sh\", \"-c\", %s], env: {PATH: \"/usr/bin:/bin\"}}"
                       % h.yaml_str("head -c 600000 /dev/zero; sleep 0.2; echo done >&2; exec sleep 60"),
    }, extra=extra)


def stream_name(ev):
    return h.pb().OutputChunk.Stream.Name(ev.output.stream).split("_")[-1]


def read_until(call, pred, what, events=None):
    """Reads CALL (a stream with a deadline) until PRED(event) holds; returns
    the events read. The stream ending or its deadline passing first fails."""
    events = [] if events is None else events
    try:
        for ev in call:
            events.append(ev)
            if pred(ev):
                return events
    except grpc.RpcError as e:
        raise AssertionError("%s: the stream failed (%s: %s) before the expected event; read:\n%s"
                             % (what, e.code(), e.details(), h.show_events(events)[:4000]))
    raise AssertionError("%s: the stream ended before the expected event; read:\n%s"
                         % (what, h.show_events(events)[:4000]))


def list_all(s, page_size=37, between=None, **filters):
    """Every record ListProcesses returns, page by page. BETWEEN() runs after
    each page but the last. Returns (records, number of pages)."""
    out, token, pages = [], "", 0
    while True:
        req = h.pb().ListProcessesRequest(page_size=page_size, page_token=token, **filters)
        resp = s.stub.ListProcesses(req, timeout=h.RPC_TIMEOUT)
        pages += 1
        out.extend(resp.processes)
        token = resp.next_page_token
        if not token:
            return out, pages
        if pages > 10000:
            raise AssertionError("ListProcesses does not end: %d pages" % pages)
        if between is not None:
            between()


def proc_status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class ResumeTest(h.E2ETest):

    # -- resume ----------------------------------------------------------------

    def test_resume_after_disconnect_loses_and_duplicates_nothing(self):
        s = self.server(lines_config())
        p = s.start_process("lines")
        first = s.watch(p.id, timeout=30 * h.SLOW, include_output=True)
        got1 = []
        for ev in first:
            got1.append(ev)
            if len([e for e in got1 if h.event_type(e) == "OUTPUT"]) >= 5 or h.is_terminal(ev.process):
                break
        first.cancel()
        ctx1 = "\nfirst stream:\n" + h.show_events(got1)
        self.assertEqual(h.event_type(got1[0]), "SNAPSHOT", ctx1)
        self.assertFalse(h.is_terminal(got1[-1].process),
                         "the 1 s script ended before 5 lines were read" + ctx1)
        last_seen = got1[-1].sequence
        rest = s.watch_all_events(p.id, deadline=30 * h.SLOW, include_output=True,
                                  after_sequence=last_seen)
        ctx = ctx1 + "\nresumed after %d:\n%s" % (last_seen, h.show_events(rest)[:6000])
        self.assertTrue(rest, "the resumed stream is empty" + ctx)
        for ev in rest:
            self.assertNotEqual(h.event_type(ev), "SNAPSHOT",
                                "a resume within the retained events has no SNAPSHOT" + ctx)
        end = rest[-1]
        self.assertTrue(h.is_terminal(end.process), ctx)
        self.assertState(end.process, "SUCCEEDED")

        # Sequences: the SNAPSHOT reflects 1..S; then every number exactly once.
        snap = got1[0].sequence
        seqs = [ev.sequence for ev in got1[1:]] + [ev.sequence for ev in rest]
        self.assertEqual(seqs, list(range(snap + 1, end.sequence + 1)),
                         "sequences after the SNAPSHOT: no hole, no duplicate" + ctx)

        # The bytes: offsets contiguous across the reconnect, and the chunks
        # are exactly the output from the first delivered offset on.
        chunks = [ev for ev in got1[1:] + rest if h.event_type(ev) == "OUTPUT"]
        self.assertTrue(chunks, ctx)
        off = chunks[0].output.offset
        data = b""
        for ev in chunks:
            self.assertEqual(stream_name(ev), "STDOUT", ctx)
            self.assertEqual(ev.output.offset, off, "offsets are contiguous" + ctx)
            self.assertEqual(ev.dropped_bytes, 0, ctx)
            off += len(ev.output.data)
            data += ev.output.data
        self.assertEqual(end.process.stdout_tail, LINES_OUTPUT, ctx)
        self.assertEqual(data, LINES_OUTPUT[chunks[0].output.offset:], ctx)
        self.assertEqual(off, len(LINES_OUTPUT), ctx)

        # A watch from the start sees the same events the two streams did.
        again = s.watch_all_events(p.id, include_output=True, after_sequence=snap)
        self.assertEqual([ev.sequence for ev in again], seqs, "replaying twice gives the same events")
        self.assertEqual(b"".join(ev.output.data for ev in again if h.event_type(ev) == "OUTPUT"),
                         data)

    def test_resume_live_process_replays_then_follows(self):
        s = self.server(lines_config())
        p = s.start_process("sleep")
        # PENDING = 1, RUNNING = 2: resuming after 1 replays RUNNING, then follows.
        call = s.watch(p.id, timeout=h.RPC_TIMEOUT, after_sequence=1)
        first = next(call)
        self.assertEqual(h.event_type(first), "STATE_CHANGED", h.show(first))
        self.assertEqual(first.sequence, 2)
        self.assertState(first.process, "RUNNING")
        s.destroy(p.id)
        events = h.drain(call, events=[first])
        self.assertEqual([ev.sequence for ev in events], [2, 3], h.show_events(events))
        self.assertState(events[-1].process, "CANCELED")

    def test_gap_after_eviction(self):
        s = self.server(lines_config())
        p = s.start_process("spew", "stdout=2000000")
        end = s.wait_terminal(p.id, deadline=60 * h.SLOW)
        self.assertState(end, "SUCCEEDED")
        last = s.watch_all_events(p.id)[0].sequence
        self.assertGreater(last, 3 + 2000000 // (256 * KIB), "2 MB takes many OUTPUT chunks")
        events = s.watch_all_events(p.id, include_output=True, after_sequence=1)
        ctx = "\n" + h.show_events(events)[:3000]
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT", "first event" + ctx)
        self.assertTrue(events[0].gap, "256 KiB of 2 MB is retained: a gap" + ctx)
        self.assertEqual(events[0].sequence, last, ctx)
        self.assertState(events[0].process, "SUCCEEDED")
        self.assertEqual(len(events), 1, "the process has ended: nothing follows" + ctx)
        # Output goes first when the ring is full: its state events stay, so a
        # watcher without output resumes with no gap.
        events = s.watch_all_events(p.id, include_output=False, after_sequence=1)
        ctx = "\n" + h.show_events(events)[:3000]
        self.assertEqual([(h.event_type(e), e.sequence, e.gap) for e in events],
                         [("STATE_CHANGED", 2, False), ("STATE_CHANGED", last, False)], ctx)
        # The terminal event itself is always retained.
        events = s.watch_all_events(p.id, after_sequence=last - 1)
        self.assertEqual([(h.event_type(e), e.sequence, e.gap) for e in events],
                         [("STATE_CHANGED", last, False)], h.show_events(events))
        self.assertState(events[0].process, "SUCCEEDED")

    def test_gap_for_a_live_process_then_live_events(self):
        s = self.server(lines_config())
        p = s.start_process("quiet_after")
        call = s.watch(p.id, timeout=30 * h.SLOW, include_output=True)
        read_until(call, lambda ev: (h.event_type(ev) == "OUTPUT" and stream_name(ev) == "STDERR"
                                     and b"done" in ev.output.data),
                   "the marker written after 600 kB of output")
        call.cancel()
        events = []
        call = s.watch(p.id, timeout=30 * h.SLOW, include_output=True, after_sequence=1)
        events.append(next(call))
        ctx = "\n" + h.show_events(events)
        self.assertEqual(h.event_type(events[0]), "SNAPSHOT", ctx)
        self.assertTrue(events[0].gap, ctx)
        self.assertState(events[0].process, "RUNNING")
        s.destroy(p.id)
        events = h.drain(call, events=events)
        ctx = "\n" + h.show_events(events)
        self.assertEqual([(h.event_type(e), e.sequence) for e in events[1:]],
                         [("STATE_CHANGED", events[0].sequence + 1)], "then live events" + ctx)
        self.assertState(events[-1].process, "CANCELED")

    def test_retained_output_of_ended_processes_is_bounded_globally(self):
        # Each process keeps up to 256 KiB for resumes; ended ones 32 MiB in
        # all: past that, the oldest are cut down to their terminal event.
        s = self.server(lines_config())
        size = 200000
        probe = s.run("spew", "stdout=%d" % size)
        events = s.watch_all_events(probe.id, include_output=True, after_sequence=1)
        self.assertFalse(events[0].gap, "one 200 kB process is kept whole:\n" + h.show_events(events)[:2000])
        self.assertEqual(sum(len(e.output.data) for e in events), size)
        ids = [probe.id] + [s.run("spew", "stdout=%d" % size).id for _ in range(40 * MIB // size)]
        old = s.watch_all_events(ids[0], include_output=True, after_sequence=1)
        self.assertEqual(h.event_type(old[0]), "SNAPSHOT", h.show_events(old)[:2000])
        self.assertTrue(old[0].gap, "the oldest ended process was cut down")
        self.assertEqual(len(old), 1)
        new = s.watch_all_events(ids[-1], include_output=True, after_sequence=1)
        self.assertFalse(new[0].gap, "the newest is kept whole")
        self.assertEqual(sum(len(e.output.data) for e in new), size)
        # Cut down, the terminal event stays.
        last = s.watch_all_events(ids[0])[0].sequence
        tail = s.watch_all_events(ids[0], after_sequence=last - 1)
        self.assertEqual([(h.event_type(e), e.sequence) for e in tail], [("STATE_CHANGED", last)])

    def test_resume_ended_process_at_its_last_sequence(self):
        s = self.server(lines_config())
        p = s.run("echo", input=b"done")
        last = s.watch_all_events(p.id)[0].sequence
        self.assertEqual(last, 3)
        # The stream ends with OK on its own (drain fails on its deadline).
        events = s.watch_all_events(p.id, after_sequence=last)
        self.assertEqual(events, [], "after_sequence = last: no event, then OK:\n%s"
                         % h.show_events(events))
        # Past the last: a resume point never sent (SPEC §12 "Resume points").
        for n in (last + 1, 1 << 40):
            self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, s.watch_all_events, p.id,
                                after_sequence=n, mention="after_sequence")
        # One before the end: exactly the terminal event, with the result.
        events = s.watch_all_events(p.id, after_sequence=last - 1)
        self.assertEqual([ev.sequence for ev in events], [last], h.show_events(events))
        self.assertEqual(events[0].process.result, b"done")

    def test_after_sequence_with_empty_id_is_invalid(self):
        s = self.server(lines_config())
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, s.watch_all_events, "",
                            after_sequence=3, mention="after_sequence")
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.watch_all_events,
                            "01890a5d-ac96-774b-bcce-b302099a8057", after_sequence=3)
        self.assertServing(s)

    # -- watch-all -------------------------------------------------------------

    def test_watch_all_snapshots_then_new_processes(self):
        s = self.server(lines_config())
        tag = uuid.uuid4().hex[:8]
        a1 = s.start_process("sleep", labels={"team": "a", "run": tag})
        a2 = s.start_process("sleep", labels={"team": "a", "run": tag, "extra": "x"})
        b1 = s.start_process("sleep", labels={"team": "b", "run": tag})
        ended_a = s.run("noop", labels={"team": "a", "run": tag})
        self.assertState(ended_a, "SUCCEEDED")

        call = s.stub.Watch(h.pb().WatchRequest(label_selector={"team": "a"}),
                            timeout=30 * h.SLOW)
        snaps = []
        for ev in call:
            snaps.append(ev)
            if len(snaps) == 2:
                break
        ctx = "\n" + h.show_events(snaps)
        self.assertEqual([h.event_type(e) for e in snaps], ["SNAPSHOT", "SNAPSHOT"], ctx)
        self.assertEqual({e.process_id or e.process.id for e in snaps}, {a1.id, a2.id},
                         "a SNAPSHOT for each matching live process, nothing else" + ctx)
        for e in snaps:
            self.assertState(e.process, "RUNNING")
            self.assertEqual(e.sequence, 2, ctx)

        # A non-matching process comes and goes; then a matching one.
        b2 = s.run("noop", labels={"team": "b"})
        self.assertState(b2, "SUCCEEDED")
        a3 = s.start_process("noop", labels={"team": "a"})
        events = read_until(call, lambda ev: (ev.process_id == a3.id and ev.HasField("process")
                                              and h.is_terminal(ev.process)),
                            "the new process's terminal event")
        s.destroy(a1.id)
        events = read_until(call, lambda ev: ev.process_id == a1.id, "a1's CANCELED", events)
        call.cancel()
        ctx = "\n" + h.show_events(events)
        ids = [e.process_id for e in events]
        for other in (b1.id, b2.id, ended_a.id):
            self.assertNotIn(other, ids, "events of non-matching or older processes" + ctx)
        mine = [e for e in events if e.process_id == a3.id]
        self.assertEqual([h.event_type(e) for e in mine], ["STATE_CHANGED"] * len(mine), ctx)
        self.assertEqual([e.sequence for e in mine], list(range(1, len(mine) + 1)),
                         "every event of the new process, from PENDING = 1" + ctx)
        self.assertState(mine[0].process, "PENDING")
        self.assertState(mine[-1].process, "SUCCEEDED")
        self.assertEqual(len(mine), 3, ctx)
        self.assertEqual(events[-1].process_id, a1.id)
        self.assertState(events[-1].process, "CANCELED")
        self.assertEqual(events[-1].sequence, 3)

    def test_watch_all_empty_selector_and_output(self):
        s = self.server(lines_config())
        call = s.stub.Watch(h.pb().WatchRequest(include_output=True), timeout=30 * h.SLOW)
        p = s.start_process("spew", "stdout=100", "stderr=30", labels={"any": "thing"})
        q = s.start_process("echo", input=b"e")
        done = set()
        events = []

        def pred(ev):
            if ev.HasField("process") and h.is_terminal(ev.process):
                done.add(ev.process_id)
            return {p.id, q.id} <= done

        events = read_until(call, pred, "both terminal events", events)
        call.cancel()
        ctx = "\n" + h.show_events(events)[:4000]
        outs = [e for e in events if e.process_id == p.id and h.event_type(e) == "OUTPUT"]
        got = {"STDOUT": 0, "STDERR": 0}
        for e in outs:
            got[stream_name(e)] += len(e.output.data)
        self.assertEqual(got, {"STDOUT": 100, "STDERR": 30}, "OUTPUT with include_output" + ctx)
        for pid in (p.id, q.id):
            seqs = [e.sequence for e in events if e.process_id == pid]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), ctx)
        # Still open: watch-all never ends by itself (checked above by reading
        # after the terminal events of both; the cancel ended it).
        self.assertEqual(call.code(), grpc.StatusCode.CANCELLED)

    def test_stalled_watch_all_is_cut_off_not_overrun(self):
        # A watch-all client that stops reading: gRPC's flow control stalls
        # the stream, spawnd queues. State events are never dropped, so past
        # the stream's queue the watcher is ended with RESOURCE_EXHAUSTED;
        # OUTPUT offered to a queue already full of state events is dropped,
        # never written past the ring (under ASan that overrun was a leak
        # and a double free; plain, a corrupt stream).
        s = self.server(h.minimal_config({
            "noop": "{function: builtin:noop}",
            "echo": "{function: builtin:echo}",
            "ticks": "{exec: [\"/bin/sh\", \"-c\", %s], env: {PATH: \"/usr/bin:/bin\"}}" % h.yaml_str(
                "i=0; while [ $i -lt 1500 ]; do echo $i; i=$((i+1)); sleep 0.002; done"),
        }))
        channel = grpc.insecure_channel(s.address)
        self.addCleanup(channel.close)
        call = h.ProcessStub(channel).Watch(h.pb().WatchRequest(include_output=True),
                                            timeout=300 * h.SLOW)
        # 16 kB events: the client's flow-control window holds a few hundred.
        big = {"k%02d" % j: "v" * 250 for j in range(64)}
        noops = [s.start_process("noop", labels=big).id for _ in range(1300)]
        ticks = s.start_process("ticks")
        self.assertState(s.wait_terminal(ticks.id, deadline=120 * h.SLOW), "SUCCEEDED")
        for pid in noops[-64:]:
            s.wait_terminal(pid)
        events = []
        with self.assertRaises(grpc.RpcError) as cm:
            for ev in call:
                events.append(ev)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         cm.exception.details())
        self.assertIn("too slow", cm.exception.details())
        # What was delivered is whole: every state event up to the cut, in order.
        by_id = {}
        for ev in events:
            by_id.setdefault(ev.process_id, []).append(ev.sequence)
        for pid, seqs in by_id.items():
            if pid != ticks.id:
                self.assertEqual(seqs, list(range(1, len(seqs) + 1)), pid)
        delivered = [pid for pid in noops if len(by_id.get(pid, [])) == 3]
        # In start order, but for the few that ran at once near the cut (the
        # cut is wherever the client's window ended: noops end out of order).
        n, slack = len(delivered), 16
        self.assertLessEqual(set(delivered), set(noops[:n + slack]))
        self.assertLessEqual(set(noops[:max(0, n - slack)]), set(delivered))
        # How much comes before the cut is bounded in bytes now (SPEC §12 "Slow
        # watchers"; call.h: 16 MiB per watcher, and a watcher stalled past
        # SPD_STREAM_STUCK_NS is cancelled with its queue freed), so only
        # what the client's own window took is sure to arrive.
        self.assertGreater(len(delivered), 10)
        self.assertServing(s)

    # -- idempotent StartProcess -----------------------------------------------

    def test_same_request_id_from_8_concurrent_clients_starts_one(self):
        s = self.server(lines_config())
        rid = "rid-" + uuid.uuid4().hex
        n = 8
        barrier = threading.Barrier(n)
        ids, errors = [None] * n, []
        channels = [grpc.insecure_channel(s.address) for _ in range(n)]

        def client(i):
            try:
                stub = h.ProcessStub(channels[i])
                req = h.pb().StartProcessRequest(target="sleep", args=["300"], request_id=rid,
                                                 labels={"idem": rid[-8:], "k": "v"})
                barrier.wait(timeout=h.RPC_TIMEOUT)
                ids[i] = stub.StartProcess(req, timeout=h.RPC_TIMEOUT).process.id
            except Exception as e:  # reported below
                errors.append("client %d: %r" % (i, e))

        try:
            threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(2 * h.RPC_TIMEOUT)
        finally:
            for c in channels:
                c.close()
        self.assertEqual(errors, [])
        self.assertEqual(len(set(ids)), 1, "every client got the same process: %s" % ids)
        listed, _ = list_all(s, label_selector={"idem": rid[-8:]})
        self.assertEqual([x.id for x in listed], [ids[0]], "exactly one process was started")
        end = s.wait_terminal(ids[0])
        self.assertState(end, "SUCCEEDED")

        # A retry after the end returns it, ended, and starts nothing.
        again = s.start_process("sleep", "300", request_id=rid, labels={"k": "v", "idem": rid[-8:]})
        self.assertEqual(again.id, ids[0])
        self.assertState(again, "SUCCEEDED")
        listed, _ = list_all(s, label_selector={"idem": rid[-8:]})
        self.assertEqual(len(listed), 1)

    def test_same_request_id_different_request_is_already_exists(self):
        s = self.server(lines_config())
        rid = "rid-" + uuid.uuid4().hex
        p = s.start_process("echo", "a", labels={"x": "1", "y": "2"}, request_id=rid, timeout=5)
        for kw in ({"args": ["b"]}, {"args": ["a", ""]}, {"target": "noop", "args": []},
                   {"input": b"z"}, {"labels": {"x": "1"}}, {"labels": {"x": "1", "y": "3"}},
                   {"timeout": 6}, {"grace": 1}):
            target = kw.get("target", "echo")
            args = kw.get("args", ["a"])
            self.assertRpcError(grpc.StatusCode.ALREADY_EXISTS, s.start_process, target, *args,
                                input=kw.get("input", b""),
                                labels=kw.get("labels", {"x": "1", "y": "2"}),
                                timeout=kw.get("timeout", 5), destroy_grace_period=kw.get("grace"),
                                request_id=rid, mention="request_id")
        # The same request (labels in another order) is the original.
        same = s.start_process("echo", "a", labels={"y": "2", "x": "1"}, request_id=rid, timeout=5)
        self.assertEqual(same.id, p.id)
        # Another id, or none, starts a new process.
        self.assertNotEqual(s.start_process("echo", "a", request_id=rid + "2").id, p.id)
        self.assertNotEqual(s.start_process("echo", "a").id, p.id)
        self.assertEqual(s.wait_terminal(p.id).result, b"a")

    # -- ListProcesses ---------------------------------------------------------

    def test_pagination_over_1000_records(self):
        s = self.server(lines_config())
        total = 1000
        started, errors = [], []
        lock = threading.Lock()

        def starter(k):
            try:
                for _ in range(total // 4):
                    pid = s.start_process("noop", labels={"batch": "one"}).id
                    with lock:
                        started.append(pid)
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=starter, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120 * h.SLOW)
        self.assertEqual(errors, [])
        self.assertEqual(len(set(started)), total)
        live = [h.pb().STATE_PENDING, h.pb().STATE_RUNNING]
        h.wait_until(lambda: not s.stub.ListProcesses(
            h.pb().ListProcessesRequest(states=live, page_size=1), timeout=h.RPC_TIMEOUT).processes,
            120 * h.SLOW, "all 1000 noop processes to end", interval=0.2)

        records, pages = list_all(s, page_size=37)
        ids = [r.id for r in records]
        self.assertEqual(len(ids), len(set(ids)), "no record twice")
        self.assertEqual(set(ids), set(started), "every record once")
        self.assertEqual(pages, (total + 36) // 37)
        created = [(r.created_at.seconds, r.created_at.nanos) for r in records]
        self.assertEqual(created, sorted(created), "oldest first")
        for r in records:
            self.assertState(r, "SUCCEEDED")
            self.assertEqual(r.target, "noop")

        # Processes started between pages: nothing twice, every old one seen.
        extra = []

        def start_one():
            extra.append(s.start_process("noop", labels={"batch": "two"}).id)

        records, pages = list_all(s, page_size=37, between=start_one)
        ids = [r.id for r in records]
        self.assertEqual(len(ids), len(set(ids)), "no record twice while records are added")
        self.assertTrue(set(started) <= set(ids), "every old record is visited")
        self.assertEqual(set(ids), set(started) | set(extra),
                         "records added between pages come later, on a later page")

        # page_size: 0 means 100, the maximum is 1000.
        resp = s.stub.ListProcesses(h.pb().ListProcessesRequest(), timeout=h.RPC_TIMEOUT)
        self.assertEqual(len(resp.processes), 100)
        self.assertTrue(resp.next_page_token)
        resp = s.stub.ListProcesses(h.pb().ListProcessesRequest(page_size=5000), timeout=h.RPC_TIMEOUT)
        self.assertEqual(len(resp.processes), 1000)
        self.assertTrue(resp.next_page_token)

    def test_list_arguments(self):
        s = self.server(lines_config())
        s.run("noop")
        bad = [h.pb().ListProcessesRequest(page_size=-1),
               h.pb().ListProcessesRequest(page_token="garbage"),
               h.pb().ListProcessesRequest(page_token="p"),
               h.pb().ListProcessesRequest(page_token="\u00e9t\u00e9"),
               h.pb().ListProcessesRequest(page_token="p" + "f" * 40)]
        for req in bad:
            err = self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, s.stub.ListProcesses, req,
                                      timeout=h.RPC_TIMEOUT)
            self.assertRegex(err.details(), "page_size|page_token")
        req = h.pb().ListProcessesRequest()
        req.states.append(99)
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, s.stub.ListProcesses, req,
                            timeout=h.RPC_TIMEOUT, mention="states")
        self.assertServing(s)

    def test_filters(self):
        s = self.server(lines_config())
        ok = s.run("echo", "hi", labels={"team": "a", "env": "prod"})
        failed = s.run("fail", "KeyError", "k", labels={"team": "b"})
        spewed = s.run("spew", "stdout=100", "result=10", labels={"team": "a"})
        running = s.start_process("sleep", labels={"team": "a", "env": "dev"})
        self.assertState(ok, "SUCCEEDED")

        def ids(**f):
            return [r.id for r in list_all(s, page_size=2, **f)[0]]

        self.assertEqual(ids(target="echo"), [ok.id])
        self.assertEqual(ids(target="fail"), [failed.id])
        self.assertEqual(ids(target="sleep"), [running.id])
        self.assertEqual(ids(target="nope"), [])
        self.assertEqual(ids(states=[h.pb().STATE_RUNNING]), [running.id])
        self.assertEqual(ids(states=[h.pb().STATE_SUCCEEDED]), [ok.id, spewed.id])
        self.assertEqual(ids(states=[h.pb().STATE_RUNNING, h.pb().STATE_FAILED]),
                         [failed.id, running.id])
        self.assertEqual(ids(states=[h.pb().STATE_FAILED]), [failed.id])
        self.assertEqual(ids(states=[h.pb().STATE_CANCELED]), [])
        self.assertEqual(ids(label_selector={"team": "a"}), [ok.id, spewed.id, running.id])
        self.assertEqual(ids(label_selector={"team": "a", "env": "dev"}), [running.id])
        self.assertEqual(ids(label_selector={"env": "prod", "team": "b"}), [])
        self.assertEqual(ids(label_selector={"team": ""}), [])
        self.assertEqual(ids(target="fail", label_selector={"team": "b"},
                             states=[h.pb().STATE_FAILED]), [failed.id])
        self.assertEqual(ids(target="echo", label_selector={"team": "a"},
                             states=[h.pb().STATE_FAILED]), [])
        self.assertEqual(ids(), [ok.id, failed.id, spewed.id, running.id])
        # Listed records carry no result and no tails; GetProcess has them.
        rec = [r for r in list_all(s)[0] if r.id == spewed.id][0]
        self.assertEqual((rec.result, rec.stdout_tail, rec.stderr_tail), (b"", b"", b""), h.show(rec))
        self.assertEqual(dict(rec.labels), {"team": "a"})
        full = s.get(spewed.id)
        self.assertEqual((len(full.result), len(full.stdout_tail)), (10, 100))
        s.destroy(running.id, wait=True)
        self.assertEqual(ids(states=[h.pb().STATE_CANCELED]), [running.id])

    # -- history ---------------------------------------------------------------

    def test_max_records_keeps_the_newest_ended(self):
        s = self.server(lines_config(extra="history: {max_records: 5, retention: 1h}"))
        live = s.start_process("sleep")
        rid = "rid-" + uuid.uuid4().hex
        ended = [s.run("noop", request_id=rid).id]
        ended += [s.run("noop").id for _ in range(7)]
        for old in ended[:3]:
            self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.get, old)
            self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.watch_all_events, old)
        for kept in ended[3:]:
            self.assertState(s.get(kept), "SUCCEEDED")
        listed = [r.id for r in list_all(s)[0]]
        self.assertEqual(listed, [live.id] + ended[3:],
                         "the live record (oldest) stays; the 5 newest ended records stay")
        # The request_id went with its record: a retry starts anew.
        again = s.start_process("noop", request_id=rid)
        self.assertNotEqual(again.id, ended[0])
        s.destroy(live.id, wait=True)

    def test_retention_evicts_lazily(self):
        s = self.server(lines_config(extra="history: {max_records: 100, retention: 1s}"))
        first = s.run("noop")
        self.assertState(s.get(first.id), "SUCCEEDED")

        def gone():
            s.run("noop")  # eviction is checked on the next start or end
            try:
                s.get(first.id)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    return True
                raise
            return False

        h.wait_until(gone, 10 * h.SLOW, "a record ended more than 1 s ago to be evicted",
                     interval=0.2)

    # -- resources -------------------------------------------------------------

    def test_watch_cycles_leave_rss_and_fds_flat(self):
        env = {}
        if h.SANITIZED:
            # ASan's quarantine holds freed memory (256 MiB by default):
            # shrink it so that RSS reflects what is really kept.
            base = os.environ.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (base + ":" if base else "") + "quarantine_size_mb=1"
        s = self.server(lines_config(), env=env)
        live = s.start_process("sleep", labels={"w": "1"})
        ended = s.run("echo", input=b"x")
        nthreads = 4
        channels = [grpc.insecure_channel(s.address) for _ in range(nthreads)]
        stubs = [h.ProcessStub(c) for c in channels]
        errors = []

        def cycles(k, n):
            stub = stubs[k]
            m = h.pb()
            reqs = [m.WatchRequest(id=live.id), m.WatchRequest(id=live.id, include_output=True),
                    m.WatchRequest(label_selector={"w": "1"}), m.WatchRequest(id=ended.id),
                    m.WatchRequest(id=live.id, after_sequence=1)]
            try:
                for i in range(n):
                    call = stub.Watch(reqs[i % len(reqs)], timeout=h.RPC_TIMEOUT)
                    next(call)
                    call.cancel()
            except Exception as e:
                errors.append("thread %d: %r" % (k, e))

        def run(total):
            ts = [threading.Thread(target=cycles, args=(k, total // nthreads)) for k in range(nthreads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(120 * h.SLOW)
            self.assertEqual(errors, [])

        try:
            run(1000)  # warm-up: connections, gRPC's pools, malloc arenas
            rss0, fds0 = proc_status_kib(s.pid, "VmRSS"), fd_count(s.pid)
            t0 = time.monotonic()
            run(10000)
            took = time.monotonic() - t0
            # Cancellations are processed asynchronously: let them settle.
            h.wait_until(lambda: abs(fd_count(s.pid) - fds0) <= 2, 10 * h.SLOW,
                         "spawnd's fd count to return to %d (now %d)" % (fds0, fd_count(s.pid)))
            rss1, fds1 = proc_status_kib(s.pid, "VmRSS"), fd_count(s.pid)
        finally:
            for c in channels:
                c.close()
        sys.stderr.write("[watch cycles] 10000 in %.1fs; RSS %d -> %d KiB; fds %d -> %d\n"
                         % (took, rss0, rss1, fds0, fds1))
        limit = (32 if h.SANITIZED else 8) * 1024
        self.assertLess(rss1 - rss0, limit, "RSS grew by %d KiB over 10000 watches" % (rss1 - rss0))
        self.assertLessEqual(abs(fds1 - fds0), 2)
        # The process being watched is unharmed, and its watchers are gone:
        # one more watch sees the destroy as usual.
        call = s.watch(live.id)
        self.assertEqual(h.event_type(next(call)), "SNAPSHOT")
        s.destroy(live.id)
        events = h.drain(call)
        self.assertState(events[-1].process, "CANCELED")
        self.assertServing(s)

    def test_destroy_wait_past_its_deadline(self):
        s = self.server(lines_config())
        p = s.start_process("stubborn", destroy_grace_period=1)
        self.assertGreater(p.pid, 0, h.show(p))
        # RUNNING means forked: wait until the function ignores SIGTERM.
        h.wait_until(lambda: h.signal_ignored(p.pid, signal.SIGTERM), 5 * h.SLOW,
                     "the stubborn child to ignore SIGTERM")
        t0 = time.monotonic()
        # DEADLINE_EXCEEDED, not the CANCELED process: the deadline, not the
        # grace, ended the call.
        self.assertRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, s.destroy, p.id, wait=True,
                            rpc_timeout=0.3)
        now = s.get(p.id)
        if time.monotonic() - t0 < 1.0:
            self.assertFalse(h.is_terminal(now), "ended within the 1 s grace: %s" % h.show(now))
        end = h.wait_until(lambda: (lambda q: q if h.is_terminal(q) else None)(s.get(p.id)),
                           5 * h.SLOW, "the destroy to complete after the RPC's deadline")
        self.assertState(end, "CANCELED")
        self.assertFlags(end, destroyed=True, canceled=True)
        took = (end.ended_at.ToNanoseconds() - end.created_at.ToNanoseconds()) / 1e9
        self.assertGreater(took, 0.9, "SIGKILL came after the grace period")
        self.assertServing(s)

    def test_request_over_max_request_bytes(self):
        s = self.server(lines_config(extra="max_request_bytes: 64KiB"))
        err = self.assertRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, s.start_process, "echo",
                                  input=b"y" * (100 * KIB))
        self.assertTrue(err.details(), "the status says why")
        # Just under the limit works, and the server keeps serving.
        p = s.run("echo", input=b"z" * (60 * KIB))
        self.assertEqual(p.result, b"z" * (60 * KIB))
        self.assertServing(s)

    def test_second_spawnd_on_the_same_port_fails_clearly(self):
        s = self.server(lines_config())
        config = h.minimal_config({"noop": "{function: builtin:noop}"}).replace(
            '"127.0.0.1:0"', '"%s"' % s.address)
        path = os.path.join(s.tmpdir, "second.yaml")
        with open(path, "w") as f:
            f.write(config)
        token = "spawnd-e2e-second-" + uuid.uuid4().hex
        env = dict(os.environ, SPAWND_E2E_TOKEN=token)
        for k in ("SPAWND_LISTEN", "SPAWND_LOG_LEVEL"):
            env.pop(k, None)
        try:
            r = subprocess.run([h.spawnd_binary(), "--config", path], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=h.START_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            self.fail("a second spawnd on %s did not exit within %.0fs" % (s.address, h.START_TIMEOUT))
        err = r.stderr.decode("utf-8", "replace")
        self.assertNotEqual(r.returncode, 0, err)
        self.assertGreater(r.returncode, 0, "an exit status, not a signal: " + err)
        # spawnd's own error record (not only gRPC's log) names the address.
        records = []
        for line in err.splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        errors = [r for r in records if r.get("level") == "error"]
        self.assertTrue([r for r in errors if s.address in json.dumps(r)],
                        "an error record naming %s:\n%s" % (s.address, err))
        # Nothing the second one started outlives it (its launcher included).
        tok = token.encode()
        h.wait_until(lambda: not [p for p in h.live_processes() if h.environ_has(p, tok)],
                     h.VANISH_TIMEOUT, "the second spawnd's processes to end")
        # The first is unharmed.
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
