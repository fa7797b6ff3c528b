"""The store (SPEC §12 "Store"): records that survive spawnd being killed.

Every restart here is a SIGKILL of spawnd and a new spawnd on the same store
file. What a client saw before (GetProcess, ListProcesses with filters and
pages, Watch of an ended process, a StartProcess or Run answered a moment
before the kill) it sees after; processes live at the kill are FAILED/LOST; a
request_id retry returns the stored process and starts nothing; ids never
repeat. The bad days: a corrupt file, a newer schema, a
second spawnd on the same store, and writes failing (a file size limit on the
running spawnd, RLIMIT_FSIZE, which is what a full disk looks like to it)
then working again.
"""

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402
import std_services as std  # noqa: E402

LOST_MESSAGE = "spawnd restarted while this process was running"
#: Rounds of "answered, then SIGKILLed at once" (test_an_answer_seen_is_a_record_kept).
ANSWER_ROUNDS = 50


def store_config(path, extra=""):
    return h.minimal_config({
        "echo": "{function: builtin:echo}",
        "noop": "{function: builtin:noop}",
        "fail": "{function: builtin:fail}",
        "sleep": "{function: builtin:sleep}",
        "slot": "{function: builtin:sleep, max_concurrent: 1}",
        "spew": "{function: builtin:spew}",
    }, extra="store: {path: %s}\n%s" % (h.yaml_str(path), extra))


def refused(config_text, *extra_args):
    """Runs spawnd on CONFIG_TEXT and expects it to exit non-zero before
    serving; returns (status, stderr)."""
    d = tempfile.mkdtemp(prefix="spawnd-e2e-refused-")
    path = os.path.join(d, "spawnd.yaml")
    with open(path, "w") as f:
        f.write(config_text)
    r = subprocess.run([h.spawnd_binary(), "--config", path] + list(extra_args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=h.START_TIMEOUT, cwd=d)
    return r.returncode, r.stderr


def check_config(config_text):
    d = tempfile.mkdtemp(prefix="spawnd-e2e-check-")
    path = os.path.join(d, "spawnd.yaml")
    with open(path, "w") as f:
        f.write(config_text)
    r = subprocess.run([h.spawnd_binary(), "--check-config", path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=h.START_TIMEOUT, cwd=d)
    return r.returncode, r.stdout + r.stderr


class StoreTest(h.E2ETest):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="spawnd-e2e-store-")
        self.path = os.path.join(self.dir, "records.db")

    def restart(self, s, config=None):
        """SIGKILLs S and starts a new spawnd on the same store."""
        s.kill9()
        s.wait_exit(h.STOP_TIMEOUT)
        return self.server(config or store_config(self.path))

    def list_all(self, s, **kw):
        """Every record ListProcesses returns, page by page (page_size 2)."""
        m = h.pb()
        out, token = [], ""
        for _ in range(1000):
            resp = s.stub.ListProcesses(m.ListProcessesRequest(page_size=2, page_token=token, **kw),
                                        timeout=h.RPC_TIMEOUT)
            out.extend(resp.processes)
            token = resp.next_page_token
            if not token:
                return out
        self.fail("ListProcesses never ended")

    # -- the restart --------------------------------------------------------------

    def test_records_survive_sigkill(self):
        s = self.server(store_config(self.path))
        ok = s.run("echo", "a", "b", labels={"team": "x", "n": "1"}, request_id="req-ok")
        failed = s.run("fail", "ValueError", "bad", "input", labels={"team": "y"})
        canceled = s.start_process("sleep", labels={"team": "x"})
        s.destroy(canceled.id, wait=True)
        running = s.start_process("slot", "600000")
        self.assertState(running, "RUNNING")
        pending = s.start_process("slot", "600000")
        self.assertState(pending, "PENDING")
        ended = [ok.id, failed.id, canceled.id]
        before = {pid: s.get(pid) for pid in ended}
        before_order = [p.id for p in self.list_all(s)]

        s2 = self.restart(s)
        for pid in ended:
            self.assertEqual(s2.get(pid), before[pid], "GetProcess(%s) after the restart" % pid)
        self.assertEqual([p.id for p in self.list_all(s2)], before_order)
        # Filters and pages answer from the store as before.
        m = h.pb()
        self.assertEqual([p.id for p in self.list_all(s2, target="echo")], [ok.id])
        self.assertEqual([p.id for p in self.list_all(s2, label_selector={"team": "x"})],
                         [ok.id, canceled.id])
        self.assertEqual([p.id for p in self.list_all(s2, states=[m.STATE_CANCELED])],
                         [canceled.id])

        # What was live is FAILED/LOST, ran only if it had started.
        lost_run, lost_pend = s2.get(running.id), s2.get(pending.id)
        for p, ran in ((lost_run, True), (lost_pend, False)):
            self.assertState(p, "FAILED")
            self.assertKind(p, "LOST")
            self.assertEqual(p.error.message, LOST_MESSAGE)
            self.assertFlags(p, ran=ran, threw=True, canceled=False)
            self.assertTrue(p.HasField("ended_at"), h.show(p))
        self.assertEqual(lost_run.pid, running.pid)
        self.assertEqual(lost_pend.pid, 0)
        # Its Watch ends with the terminal record, as for any ended process.
        evs = s2.watch_all_events(running.id)
        self.assertEqual([h.event_type(e) for e in evs], ["SNAPSHOT"], h.show_events(evs))
        self.assertState(evs[0].process, "FAILED")
        # PENDING 1, RUNNING 2; FAILED past any number the dead spawnd sent.
        self.assertEqual(evs[0].sequence, 2 + (1 << 40))

        # The same request_id: the stored process, nothing started.
        count = len(self.list_all(s2))
        again = s2.start_process("echo", "a", "b", labels={"n": "1", "team": "x"},
                                 request_id="req-ok")
        self.assertEqual(again.id, ok.id)
        self.assertState(again, "SUCCEEDED")
        self.assertEqual(len(self.list_all(s2)), count)
        self.assertRpcError(grpc.StatusCode.ALREADY_EXISTS, s2.start_process, "echo", "other",
                            request_id="req-ok")
        # New ids are new.
        fresh = s2.run("noop")
        self.assertNotIn(fresh.id, before_order)
        self.assertNotIn(fresh.id, [p.id for p in self.list_all(s2)][:-1])

    def test_watch_of_an_ended_process_after_restart(self):
        s = self.server(store_config(self.path))
        p = s.run("spew", "stdout=1000")
        last = s.get(p.id)
        s2 = self.restart(s)
        evs = s2.watch_all_events(p.id)
        self.assertEqual([h.event_type(e) for e in evs], ["SNAPSHOT"], h.show_events(evs))
        snap = evs[0]
        self.assertFalse(snap.gap)
        self.assertState(snap.process, "SUCCEEDED")
        self.assertEqual(len(snap.process.stdout_tail), 1000)
        self.assertEqual(snap.process, last)
        n = snap.sequence
        self.assertGreater(n, 3)  # PENDING, RUNNING, OUTPUT..., SUCCEEDED
        # after_sequence == last: OK, nothing replayed.
        self.assertEqual(s2.watch_all_events(p.id, after_sequence=n), [])
        # Below it: the events were not kept, a gap SNAPSHOT.
        evs = s2.watch_all_events(p.id, after_sequence=1, include_output=True)
        self.assertEqual([(h.event_type(e), e.gap) for e in evs], [("SNAPSHOT", True)],
                         h.show_events(evs))
        self.assertEqual(evs[0].sequence, n)
        # Beyond it: INVALID_ARGUMENT, as before the restart.
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, s2.watch_all_events, p.id,
                            after_sequence=n + 1, mention="after_sequence")

    def test_run_retried_after_restart(self):
        """Run with a request_id seen before a restart: the stored process,
        nothing started; its events were not kept, so from the first event
        is a gap SNAPSHOT of the terminal record, then OK (SPEC §12)."""
        m = h.pb()
        req = m.RunRequest(start=m.StartProcessRequest(target="echo", args=["r"], request_id="run-1"))
        s = self.server(store_config(self.path))
        first = h.drain(s.stub.Run(req, timeout=h.RPC_TIMEOUT), "Run")
        self.assertState(first[-1].process, "SUCCEEDED")
        pid = first[-1].process.id
        s2 = self.restart(s)
        count = len(self.list_all(s2))
        again = h.drain(s2.stub.Run(req, timeout=h.RPC_TIMEOUT), "Run")
        self.assertEqual([(h.event_type(e), e.gap) for e in again], [("SNAPSHOT", True)],
                         h.show_events(again))
        self.assertEqual(again[0].process.id, pid)
        self.assertEqual(again[0].process.result, b"r")
        self.assertEqual(len(self.list_all(s2)), count)

    def test_run_destroy_on_cancel_before_commit(self):
        """Run with destroy_on_cancel cancelled at once, before the new record's
        commit (no event told yet): the process is still destroyed, never left
        running unwatched. Many rounds: the cancel must land in the window."""
        m = h.pb()
        s = self.server(store_config(self.path, extra="max_running: 256"))
        for _ in range(150):
            call = s.stub.Run(m.RunRequest(start=m.StartProcessRequest(target="sleep"),
                                           destroy_on_cancel=True), timeout=h.RPC_TIMEOUT)
            call.cancel()

        def none_live():
            return not [p for p in self.list_all(s) if not h.is_terminal(p)]
        h.wait_until(none_live, 10 * h.SLOW, "every cancelled Run's process to end")
        for p in self.list_all(s):
            self.assertState(p, "CANCELED")
            self.assertFlags(p, destroyed=True)

    def test_resume_after_restart_from_output_seen(self):
        """A client saw OUTPUT events (sequences the store never commits) of a
        live process, then spawnd was SIGKILLed: resuming from the last
        sequence it saw gets the gap SNAPSHOT of the LOST end (SPEC §12),
        numbered past it, never INVALID_ARGUMENT."""
        m = h.pb()
        cfg = store_config(self.path, extra="")
        cfg = cfg.replace("targets:\n", "targets:\n  ticker: {exec: [\"/bin/sh\", \"-c\", "
                          "\"i=0; while [ $i -lt 400 ]; do echo t$i; i=$((i+1)); sleep 0.02; done\"]}\n", 1)
        s = self.server(cfg)
        req = m.RunRequest(start=m.StartProcessRequest(target="ticker", request_id="tick"),
                           include_output=True)
        last, pid = 0, None
        for ev in s.stub.Run(req, timeout=h.RPC_TIMEOUT):
            last, pid = ev.sequence, ev.process_id
            if last >= 12:
                break
        s2 = self.restart(s)
        for after in (last, last - 1):
            for name, call in (
                    ("Run", lambda: s2.stub.Run(m.RunRequest(start=req.start, include_output=True,
                                                             after_sequence=after),
                                                timeout=h.RPC_TIMEOUT)),
                    ("Watch", lambda: s2.stub.Watch(m.WatchRequest(id=pid, after_sequence=after),
                                                    timeout=h.RPC_TIMEOUT))):
                evs = h.drain(call(), name)
                self.assertEqual([(h.event_type(e), e.gap) for e in evs], [("SNAPSHOT", True)],
                                 "%s after_sequence=%d: %s" % (name, after, h.show_events(evs)))
                self.assertGreater(evs[0].sequence, last)
                self.assertKind(evs[0].process, "LOST")

    def test_an_end_seen_is_an_end_kept(self):
        """The promise: a client that saw a process end reads that end after
        any crash. Each round kills spawnd the moment the terminal event (or
        the Destroy(wait) reply) arrives."""
        s = self.server(store_config(self.path))
        for i in range(3):
            p = s.run("echo", input=b"round %d" % i)
            self.assertState(p, "SUCCEEDED")
            s = self.restart(s)
            self.assertEqual(s.get(p.id).result, b"round %d" % i)
            self.assertState(s.get(p.id), "SUCCEEDED")
        q = s.start_process("sleep")
        d = s.destroy(q.id, wait=True)
        self.assertState(d, "CANCELED")
        s = self.restart(s)
        self.assertState(s.get(q.id), "CANCELED")
        self.assertFlags(s.get(q.id), destroyed=True, canceled=True)

    def test_an_answer_seen_is_a_record_kept(self):
        """The other half of the promise: a client told of a process (the
        StartProcess answer, Run's first event) finds it after any crash, and
        a retry with its request_id starts nothing. Each round SIGKILLs spawnd
        the moment the answer arrives, well inside the few milliseconds a
        record would wait for company before its commit; many rounds make
        that window real."""
        m = h.pb()
        s = self.server(store_config(self.path))
        answered = []
        for i in range(ANSWER_ROUNDS):
            rid = "answered-%d" % i
            start = m.StartProcessRequest(target="sleep", args=["600000"], request_id=rid)
            call = None
            if i % 2 == 0:
                p = s.stub.StartProcess(start, timeout=h.RPC_TIMEOUT).process
                s.kill9()
                self.assertState(p, "RUNNING")
                pid = p.id
            else:
                call = s.stub.Run(m.RunRequest(start=start), timeout=h.RPC_TIMEOUT)
                first = next(call)
                s.kill9()
                self.assertEqual((h.event_type(first), first.sequence), ("STATE_CHANGED", 1),
                                 h.show_events([first]))
                pid = first.process_id
            s = self.restart(s)
            if call is not None:
                call.cancel()
            # Known after the restart: it was live, so FAILED/LOST.
            got = s.get(pid)
            self.assertState(got, "FAILED", "round %d" % i)
            self.assertKind(got, "LOST")
            # The retry returns it and starts nothing.
            again = s.stub.StartProcess(start, timeout=h.RPC_TIMEOUT).process
            self.assertEqual(again.id, pid, "round %d: the retry started %s" % (i, h.show(again)))
            self.assertState(again, "FAILED")
            answered.append(pid)
        self.assertEqual(sorted(p.id for p in self.list_all(s)), sorted(answered))
        self.assertEqual(len(set(answered)), ANSWER_ROUNDS)

    def test_streams_gap_free_with_store(self):
        """What waits for a new record's commit is told from its ring once
        committed: a Run (with output) and a watch-all opened before see
        every event from PENDING = 1 to the end, in order, none twice."""
        m = h.pb()
        s = self.server(store_config(self.path))
        watch_all = s.stub.Watch(m.WatchRequest(include_output=True), timeout=30 * h.SLOW)
        ready = s.start_process("noop")  # the watch-all is subscribed once it sees this
        for ev in watch_all:
            if ev.process_id == ready.id and ev.HasField("process") and h.is_terminal(ev.process):
                break
        run = h.drain(s.stub.Run(m.RunRequest(
            start=m.StartProcessRequest(target="spew", args=["stdout=3000", "stderr=500"]),
            include_output=True), timeout=h.RPC_TIMEOUT), "Run")
        ctx = "\n" + h.show_events(run)[:4000]
        pid = run[0].process_id
        self.assertEqual([e.sequence for e in run], list(range(1, len(run) + 1)), ctx)
        self.assertState(run[0].process, "PENDING")
        self.assertState(run[-1].process, "SUCCEEDED")
        self.assertEqual(sum(len(e.output.data) for e in run if h.event_type(e) == "OUTPUT"),
                         3500, ctx)
        q = s.start_process("echo", input=b"e")
        self.assertEqual(s.get(q.id).id, q.id)
        events, done = [], set()
        for ev in watch_all:
            events.append(ev)
            if ev.HasField("process") and h.is_terminal(ev.process):
                done.add(ev.process_id)
            if {pid, q.id} <= done:
                break
        watch_all.cancel()
        ctx = "\n" + h.show_events(events)[:4000]
        for one, n in ((pid, len(run)), (q.id, None)):
            seqs = [e.sequence for e in events if e.process_id == one]
            self.assertEqual(seqs, list(range(1, (n or len(seqs)) + 1)), ctx)

    def test_relative_path_and_health(self):
        s = self.server(store_config("records.db"))
        self.assertTrue(os.path.exists(os.path.join(s.tmpdir, "records.db")),
                        "store.path is relative to the config file's directory")
        hs = std.HealthStub(s.channel)
        self.assertEqual(hs.check("spawnd.store"), "SERVING")
        # Every descriptor of the store is close-on-exec: neither the
        # launcher nor any child holds the file or its lock.
        store_fds = 0
        for fd in os.listdir("/proc/%d/fd" % s.pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (s.pid, fd))
            except OSError:
                continue
            if "records.db" not in target:
                continue
            store_fds += 1
            with open("/proc/%d/fdinfo/%s" % (s.pid, fd)) as f:
                flags = int(f.read().split("flags:")[1].split()[0], 8)
            self.assertTrue(flags & os.O_CLOEXEC, "fd %s -> %s is not O_CLOEXEC" % (fd, target))
        self.assertGreaterEqual(store_fds, 2)  # the file and its lock, at least
        launcher = s.launcher_pid()
        for fd in os.listdir("/proc/%d/fd" % launcher):
            try:
                self.assertNotIn("records.db", os.readlink("/proc/%d/fd/%s" % (launcher, fd)))
            except OSError:
                pass
        # Without a store the name is unknown.
        s2 = self.server(h.minimal_config({"noop": "{function: builtin:noop}"}))
        with self.assertRaises(grpc.RpcError) as cm:
            std.HealthStub(s2.channel).check("spawnd.store")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    # -- bad days -------------------------------------------------------------------

    def test_corrupt_store_refused(self):
        with open(self.path, "wb") as f:
            f.write(b"this is not an SQLite database, whatever it once was" * 200)
        cfg = store_config(self.path)
        rc, err = refused(cfg)
        self.assertNotEqual(rc, 0)
        self.assertIn(self.path, err)
        self.assertIn("not a database", err)
        rc, out = check_config(cfg)
        self.assertEqual(rc, 1, out)
        self.assertIn(self.path, out)
        self.assertIn("not a database", out)

    def test_newer_schema_refused(self):
        db = sqlite3.connect(self.path)
        db.executescript("CREATE TABLE schema_version (version INTEGER);"
                         "INSERT INTO schema_version VALUES (1000);")
        db.close()
        cfg = store_config(self.path)
        rc, err = refused(cfg)
        self.assertNotEqual(rc, 0)
        self.assertIn(self.path, err)
        self.assertIn("schema version 1000 is newer", err)
        rc, out = check_config(cfg)
        self.assertEqual(rc, 1, out)
        self.assertIn("newer", out)

    def test_store_files_are_private(self):
        """Records hold args, labels, results and output: the store file, its
        -wal and -shm and its lock are created 0600 whatever the umask (SQLite
        would make them 0644). A lock file left 0644 is made 0600: anyone who
        could open it could hold a read lock and keep spawnd from starting."""
        lock = self.path + ".lock"
        with open(lock, "w"):
            pass
        os.chmod(lock, 0o644)
        old = os.umask(0o022)
        try:
            s = self.server(store_config(self.path))
        finally:
            os.umask(old)
        self.assertState(s.run("echo", "x"), "SUCCEEDED")
        for suffix in ("", "-wal", "-shm", ".lock"):
            f = self.path + suffix
            if os.path.exists(f):
                self.assertEqual(os.stat(f).st_mode & 0o777, 0o600, f)

    def test_unopenable_store_refused(self):
        cfg = store_config("/nonexistent-spawnd-dir/records.db")
        rc, err = refused(cfg)
        self.assertNotEqual(rc, 0)
        self.assertIn("/nonexistent-spawnd-dir/records.db", err)
        rc, out = check_config(cfg)
        self.assertEqual(rc, 1, out)
        self.assertIn("/nonexistent-spawnd-dir/records.db", out)
        # A good one passes the check.
        rc, out = check_config(store_config(self.path))
        self.assertEqual(rc, 0, out)

    def test_second_spawnd_refused(self):
        s = self.server(store_config(self.path))
        p = s.run("noop")
        rc, err = refused(store_config(self.path))
        self.assertNotEqual(rc, 0)
        self.assertIn(self.path, err)
        self.assertIn("held by another spawnd (pid %d" % s.pid, err)
        # The first one is unharmed.
        self.assertState(s.get(p.id), "SUCCEEDED")
        self.assertServing(s)

    def test_failing_writes(self):
        s = self.server(store_config(self.path))
        hs = std.HealthStub(s.channel)
        before = s.run("echo", input=b"committed")
        self.assertEqual(hs.check("spawnd.store"), "SERVING")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # Nothing spawnd writes may grow a file now: what a full disk does.
        resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (1, hard))
        during = []
        try:
            for i in range(5):
                # Delivered, not held: each run ends within the deadline.
                p = s.run("echo", input=b"during %d" % i)
                self.assertState(p, "SUCCEEDED")
                during.append(p.id)
            h.wait_until(lambda: hs.check("spawnd.store") == "NOT_SERVING", h.RPC_TIMEOUT,
                         "spawnd.store NOT_SERVING while writes fail")
            # Still serving from memory.
            self.assertEqual(s.get(during[-1]).result, b"during 4")
            self.assertEqual(hs.check(""), "SERVING")
            more = s.run("echo", input=b"still failing")
            during.append(more.id)
            self.assertEqual(hs.check("spawnd.store"), "NOT_SERVING")
            # Logged once, not per record.
            failures = [r for r in s.log_records() if r.get("msg", "").startswith("store: cannot write")]
            self.assertEqual(len(failures), 1, failures)
            self.assertIn(self.path, failures[0].get("store", ""))
        finally:
            resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (soft, hard))
        h.wait_until(lambda: hs.check("spawnd.store") == "SERVING", h.RPC_TIMEOUT,
                     "spawnd.store SERVING again once writes work")
        h.wait_until(lambda: any(r.get("msg") == "store: writes work again" for r in s.log_records()),
                     h.RPC_TIMEOUT, "the log saying writes work again")
        after = s.run("echo", input=b"after")
        # Nothing committed was lost, and what failed was written since.
        s2 = self.restart(s)
        self.assertEqual(s2.get(before.id).result, b"committed")
        for pid in during:
            self.assertState(s2.get(pid), "SUCCEEDED")
        self.assertEqual(s2.get(after.id).result, b"after")

    def test_retention_bounds_the_store(self):
        s = self.server(store_config(self.path, extra="history: {max_records: 3}"))
        ids = [s.run("noop").id for _ in range(6)]
        s2 = self.restart(s, store_config(self.path, extra="history: {max_records: 3}"))
        self.assertEqual([p.id for p in self.list_all(s2)], ids[-3:])
        db = sqlite3.connect(self.path)
        try:
            (n,) = db.execute("SELECT count(*) FROM processes").fetchone()
        finally:
            db.close()
        self.assertEqual(n, 3)


if __name__ == "__main__":
    h.main()
