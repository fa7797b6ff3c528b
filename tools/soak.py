#!/usr/bin/python3
"""A soak of spawnd: N processes of mixed targets from concurrent clients.

    /usr/bin/python3 tools/soak.py [--processes 5000] [--clients 8] [--json]
    make soak                      (builds spawnd and spawnd-worker first)

It starts its own spawnd (--spawnd, default bazel-bin/service/front/spawnd) on a
temporary config listening on 127.0.0.1:0, with the sample targets under every
start method (fork, forkserver, spawn, exec). CLIENTS threads, each on its own
connection, run the processes: echo, noop, short sleeps, sleeps and stubborns
destroyed (stubborn with a grace period, Destroy(wait) must last at least that
long), exit CODE, fail, crash, spew with output, tree destroyed, /bin/true and
exit3, echo under forkserver and spawn, and echo destroyed at once (a race with
its normal end). Most are watched to their end (a single-process Watch, with
output for spew); some are polled with GetProcess, some ended with
Destroy(wait); some get an extra watcher that leaves mid-stream or never reads.
Watch-all clients come and go meanwhile.

Before the load (after a warm-up) and after it (once ListTargets shows nothing
running or pending, no zombie is left and descriptors came back, or a deadline
passed), it prints the front's and the launcher's VmRSS, open fds and threads,
the zygotes', and the zombies under spawnd. Then it checks every process's
terminal event and its final record (GetProcess) against what its target must
produce, and that ListProcesses lists them all. Exit status 1 if descriptors or
zombies grew, a record is wrong, an RPC failed or spawnd did not stop cleanly.

Bounded: N processes, and --max-seconds for the load (then it stops early and
says so). Not part of `make test`; tests/e2e:soak_smoke_test runs it with 100.
"""

import argparse
import collections
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import soaklib  # noqa: E402
from soaklib import h  # noqa: E402

import grpc  # noqa: E402

KIB = 1024
# Destroyed targets under every method; the samples under the default (fork).
TARGETS = {
    "echo": "{function: builtin:echo}",
    "noop": "{function: builtin:noop}",
    "sleep": "{function: builtin:sleep}",
    "stubborn": "{function: builtin:stubborn, destroy_grace_period: 2s}",
    "fail": "{function: builtin:fail}",
    "crash": "{function: builtin:crash}",
    "exit": "{function: builtin:exit}",
    "spew": "{function: builtin:spew}",
    "tree": "{function: builtin:tree}",
    "true": '{exec: ["/bin/true"]}',
    "exit3": '{exec: ["/bin/sh", "-c", "exit 3"]}',
    "echo_forkserver": "{function: builtin:echo, start_method: forkserver}",
    "sleep_forkserver": "{function: builtin:sleep, start_method: forkserver}",
    "echo_spawn": "{function: builtin:echo, start_method: spawn}",
    "crash_spawn": "{function: builtin:crash, start_method: spawn}",
}


def config_text(processes, max_running):
    # Every record of the run must still be there for the final check.
    return h.minimal_config(TARGETS, extra="\n".join([
        "max_running: %d" % max_running,
        "max_pending: 1024",
        "history: {max_records: %d, retention: 1h}" % max(10000, 2 * processes + 1000),
    ]))


# ---------------------------------------------------------------------------
# Jobs: what to start, how to end it, and what its record must say
# ---------------------------------------------------------------------------


class Job:
    __slots__ = ("index", "kind", "target", "args", "input", "destroy_after", "grace",
                 "wait", "extra_watcher", "include_output", "expect", "id", "terminal",
                 "events", "destroy_elapsed", "notes", "was_running")

    def __init__(self, index, kind, target, args=(), input=b"", expect=None):
        self.index, self.kind, self.target = index, kind, target
        self.args, self.input = list(args), input
        self.destroy_after = None   # seconds after the start, or None: never destroyed
        self.grace = None           # Destroy's grace_period
        self.wait = "watch"         # watch | poll | destroy_wait
        self.extra_watcher = None   # None | "quit" (reads a little, cancels) | "idle" (never reads)
        self.include_output = False
        self.expect = expect or {}
        self.id = None
        self.terminal = None        # the terminal Process seen by the client
        self.events = []
        self.destroy_elapsed = None
        self.notes = []
        self.was_running = None


def make_job(index, kind, rng):
    """A job of KIND (see KINDS), with its random parts from RNG."""
    if kind == "echo":
        data = rng.randbytes(rng.choice([0, 1, 17, 1000, 4 * KIB]))
        args = [] if data else ["a", "b%d" % index]
        return Job(index, kind, "echo", args, data, {"result": data or " ".join(args).encode()})
    if kind == "noop":
        return Job(index, kind, "noop", expect={"result": b""})
    if kind == "sleep_short":
        return Job(index, kind, "sleep", [str(rng.randint(1, 30))], expect={"result": b""})
    if kind in ("sleep_destroy", "sleep_forkserver_destroy"):
        j = Job(index, kind, "sleep" if kind == "sleep_destroy" else "sleep_forkserver")
        j.destroy_after = rng.uniform(0, 0.02)
        return j
    if kind == "stubborn_destroy":
        j = Job(index, kind, "stubborn")
        j.destroy_after = rng.uniform(0.01, 0.03)
        j.grace = rng.choice([0.0, 0.02, 0.1])
        return j
    if kind == "tree_destroy":
        j = Job(index, kind, "tree")
        j.destroy_after = rng.uniform(0.02, 0.05)
        return j
    if kind == "exit":
        code = rng.choice([0, 1, 2, 3, 42, 100, 137, 255])
        return Job(index, kind, "exit", [str(code)], expect={"code": code})
    if kind == "fail":
        words = ["soak", str(index)]
        return Job(index, kind, "fail", ["ValueError"] + words,
                   expect={"type": "ValueError", "message": " ".join(words)})
    if kind in ("crash", "crash_spawn"):
        return Job(index, kind, kind if kind == "crash_spawn" else "crash")
    if kind == "spew":
        out, err, res = rng.choice([0, 100, 64 * KIB, 256 * KIB]), rng.choice([0, 10, 4 * KIB]), rng.choice([0, 5, 8 * KIB])
        j = Job(index, kind, "spew", ["stdout=%d" % out, "stderr=%d" % err, "result=%d" % res],
                expect={"stdout": out, "stderr": err, "result_len": res})
        j.include_output = True
        return j
    if kind == "true":
        return Job(index, kind, "true", expect={"result": b""})
    if kind == "exit3":
        return Job(index, kind, "exit3", expect={"code": 3})
    if kind in ("echo_forkserver", "echo_spawn"):
        data = b"%s %d" % (kind.encode(), index)
        return Job(index, kind, kind, input=data, expect={"result": data})
    if kind == "echo_destroy_race":
        data = b"race %d" % index
        j = Job(index, kind, "echo", input=data, expect={"result": data})
        j.destroy_after = 0.0
        return j
    raise ValueError(kind)


#: kind -> weight in the mix.
KINDS = {
    "echo": 12, "noop": 10, "sleep_short": 6, "sleep_destroy": 8, "stubborn_destroy": 5,
    "tree_destroy": 2, "exit": 6, "fail": 5, "crash": 3, "spew": 6, "true": 5, "exit3": 4,
    "echo_forkserver": 6, "sleep_forkserver_destroy": 3, "echo_spawn": 3, "crash_spawn": 2,
    "echo_destroy_race": 4,
}

METHOD = {"echo_forkserver": "FORKSERVER", "sleep_forkserver": "FORKSERVER",
          "echo_spawn": "SPAWN", "crash_spawn": "SPAWN", "true": "SPAWN", "exit3": "SPAWN"}


def check_record(job, p, final=True):
    """Problems (strings) with P as the terminal record of JOB; [] when right.
    FINAL: P is the record after the load (GetProcess), not the terminal event
    (which may precede a Destroy of a process that had already ended)."""
    bad = []

    def need(cond, what):
        if not cond:
            bad.append(what)

    st = h.state(p)
    destroyed = job.destroy_after is not None
    need(p.id == job.id, "id %r, started %r" % (p.id, job.id))
    need(p.target == job.target, "target %r" % p.target)
    need(list(p.args) == job.args, "args %r" % list(p.args))
    need(st in h.TERMINAL_STATES, "state %s is not terminal" % st)
    if final or job.kind != "echo_destroy_race" or h.state(p) != "SUCCEEDED":
        need(p.destroyed == destroyed, "destroyed=%s" % p.destroyed)
    need(p.threw == (st == "FAILED"), "threw=%s in %s" % (p.threw, st))
    need(p.HasField("error") == (st == "FAILED"), "error present=%s in %s" % (p.HasField("error"), st))
    need(p.ran == (p.pid != 0), "ran=%s with pid %d" % (p.ran, p.pid))
    need(p.HasField("ended_at"), "no ended_at")
    method = METHOD.get(job.target, "FORK")
    if p.ran:
        need(h.start_method(p.start_method) == method, "start_method %s, want %s" % (h.start_method(p.start_method), method))
    e = job.expect
    k = job.kind
    if k in ("echo", "noop", "sleep_short", "true", "echo_forkserver", "echo_spawn"):
        need(st == "SUCCEEDED", "state %s, want SUCCEEDED" % st)
        need(p.result == e["result"], "result %r, want %r" % (p.result[:64], e["result"][:64]))
        need(p.exit_code == 0 and p.signal == 0, "exit_code %d signal %d" % (p.exit_code, p.signal))
    elif k in ("sleep_destroy", "sleep_forkserver_destroy", "tree_destroy"):
        need(st == "CANCELED" and p.canceled, "state %s canceled=%s, want CANCELED" % (st, p.canceled))
        if p.ran:
            need(p.signal == signal.SIGTERM and p.exit_code == 0,
                 "signal %d exit_code %d, want SIGTERM" % (p.signal, p.exit_code))
    elif k == "stubborn_destroy":
        need(st == "CANCELED" and p.canceled, "state %s canceled=%s, want CANCELED" % (st, p.canceled))
        if p.ran:
            # SIGTERM kills it if it came before the target set SIG_IGN.
            need(p.signal in (signal.SIGKILL, signal.SIGTERM), "signal %d" % p.signal)
            need(not (p.HasField("error") and p.error.oom_suspected), "a SIGKILL spawnd sent is suspected OOM")
            if p.signal == signal.SIGKILL and job.destroy_elapsed is not None:
                need(job.destroy_elapsed >= job.grace,
                     "Destroy(wait, grace %.3fs) returned after %.3fs" % (job.grace, job.destroy_elapsed))
    elif k in ("exit", "exit3"):
        code = e["code"]
        if code == 0:
            need(st == "SUCCEEDED", "exit 0 ended %s" % st)
        else:
            need(st == "FAILED" and h.kind(p) == "EXIT_CODE", "state %s kind %s, want FAILED/EXIT_CODE" % (st, h.kind(p)))
            need(p.exit_code == code and p.error.exit_code == code, "exit_code %d/%d, want %d" % (p.exit_code, p.error.exit_code, code))
            need(p.error.oom_suspected == (code in (9, 137)), "oom_suspected=%s for exit %d" % (p.error.oom_suspected, code))
    elif k == "fail":
        need(st == "FAILED" and h.kind(p) == "RAISED", "state %s kind %s, want FAILED/RAISED" % (st, h.kind(p)))
        need((p.error.type, p.error.message) == (e["type"], e["message"]), "error %r %r" % (p.error.type, p.error.message))
    elif k in ("crash", "crash_spawn"):
        need(st == "FAILED" and h.kind(p) == "SIGNALED", "state %s kind %s, want FAILED/SIGNALED" % (st, h.kind(p)))
        need(p.signal == signal.SIGSEGV and p.error.type == "SIGSEGV", "signal %d type %r" % (p.signal, p.error.type))
        need(not p.error.oom_suspected, "a SIGSEGV suspected OOM")
    elif k == "spew":
        need(st == "SUCCEEDED", "state %s, want SUCCEEDED" % st)
        need((p.stdout_bytes, p.stderr_bytes, len(p.result)) == (e["stdout"], e["stderr"], e["result_len"]),
             "stdout/stderr/result bytes %d/%d/%d, want %d/%d/%d" % (
                 p.stdout_bytes, p.stderr_bytes, len(p.result), e["stdout"], e["stderr"], e["result_len"]))
    elif k == "echo_destroy_race":
        # SPEC §12 "Destroy and canceled": SUCCEEDED (destroyed, not canceled)
        # when it had exited before the signal; CANCELED only if the signal ended it.
        if st == "SUCCEEDED":
            need(not p.canceled, "SUCCEEDED with canceled=true")
            need(p.result == e["result"], "result %r" % p.result[:64])
        elif st == "CANCELED":
            need(p.canceled, "CANCELED with canceled=false")
            need(not p.ran or p.signal != 0,
                 "CANCELED although it exited by itself (exit_code %d, signal 0, result %r): "
                 "the destroy did not end it" % (p.exit_code, p.result[:32]))
        else:
            bad.append("state %s" % st)
    return bad


def check_stream(job, events):
    """Problems with a single-process Watch's EVENTS (read to their end)."""
    bad = []
    if not events:
        return ["no event"]
    replay = job.include_output  # watched with after_sequence=1
    first = h.event_type(events[0])
    if not replay and first != "SNAPSHOT":
        bad.append("first event %s, not SNAPSHOT" % first)
    if replay and first == "SNAPSHOT" and not events[0].gap:
        bad.append("a replay after sequence 1 began with a SNAPSHOT without gap")
    if replay and first != "SNAPSHOT" and events[0].sequence != 2:
        bad.append("a replay after sequence 1 began at sequence %d" % events[0].sequence)
    complete = replay and first != "SNAPSHOT"
    last = 0
    out = {}
    for ev in events:
        if ev.sequence <= last and not (ev is events[0]):
            bad.append("sequence %d after %d" % (ev.sequence, last))
        last = max(last, ev.sequence)
        if ev.process_id and ev.process_id != job.id:
            bad.append("event of %s in the stream of %s" % (ev.process_id, job.id))
        if h.event_type(ev) == "OUTPUT":
            s = ev.output.stream
            got = out.get(s, 0)
            if ev.output.offset != got and not ev.dropped_bytes:
                bad.append("output offset %d, want %d" % (ev.output.offset, got))
            out[s] = ev.output.offset + len(ev.output.data)
    if not h.is_terminal(events[-1].process):
        bad.append("last event is not terminal (%s)" % h.event_type(events[-1]))
    if complete and job.kind == "spew" and not any(ev.dropped_bytes for ev in events):
        m = h.pb().OutputChunk
        got = (out.get(m.STREAM_STDOUT, 0), out.get(m.STREAM_STDERR, 0))
        if got != (job.expect["stdout"], job.expect["stderr"]):
            bad.append("OUTPUT events carried %d/%d bytes, want %d/%d" % (got + (job.expect["stdout"], job.expect["stderr"])))
    return bad


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


def new_channel(address):
    # Its own connection per client (Python channels to one address share one
    # subchannel, hence one TCP connection, unless told otherwise).
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                   ("grpc.max_receive_message_length", 64 * 1024 * 1024)])


class Run:
    def __init__(self, server, jobs, run_id, max_seconds):
        self.server = server
        self.jobs = jobs
        self.run_id = run_id
        self.next = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.problems = []
        self.rpc_errors = collections.Counter()
        self.done = 0
        self.watch_all = collections.Counter()
        self.time_bound_hit = False

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def take(self):
        with self.lock:
            if self.next >= len(self.jobs) or self.stop.is_set():
                return None
            if time.monotonic() > self.deadline:
                self.time_bound_hit = True
                return None
            j = self.jobs[self.next]
            self.next += 1
            return j

    # -- one client ----------------------------------------------------------

    def client(self, seed):
        rng = random.Random(seed)
        ch = new_channel(self.server.address)
        stub = h.ProcessStub(ch)
        try:
            while True:
                job = self.take()
                if job is None:
                    return
                try:
                    self.run_job(stub, job, rng)
                except grpc.RpcError as e:
                    with self.lock:
                        self.rpc_errors[(job.kind, e.code().name)] += 1
                    self.problem("job %d (%s) %s: RPC %s: %s" % (job.index, job.kind, job.id, e.code().name, e.details()))
                except Exception as e:  # a tool: report, go on
                    self.problem("job %d (%s) %s [wait %s, extra watcher %s, destroy after %s]: %s: %s" % (
                        job.index, job.kind, job.id, job.wait, job.extra_watcher, job.destroy_after,
                        type(e).__name__, e) + self.now(stub, job))
                with self.lock:
                    self.done += 1
        finally:
            ch.close()

    def now(self, stub, job):
        """The record as it is now, for a problem's text."""
        if not job.id:
            return ""
        try:
            return "; now: " + h.show(stub.GetProcess(h.pb().GetProcessRequest(id=job.id), timeout=h.RPC_TIMEOUT), 400)
        except grpc.RpcError as e:
            return "; GetProcess now: %s" % e.code().name

    def run_job(self, stub, job, rng):
        m = h.pb()
        if job.destroy_after is not None and rng.random() < 0.15:
            job.wait = "destroy_wait"
        elif rng.random() < 0.1:
            job.wait = "poll"
        r = rng.random()
        job.extra_watcher = "quit" if r < 0.15 else ("idle" if r < 0.2 else None)
        req = m.StartProcessRequest(target=job.target, args=job.args, input=job.input,
                                    labels={"soak": self.run_id, "kind": job.kind})
        p = stub.StartProcess(req, timeout=h.RPC_TIMEOUT).process
        job.id = p.id
        job.was_running = h.state(p) == "RUNNING"
        watch = None
        if job.wait == "watch":
            # Output is not replayed after a SNAPSHOT: a watch that must see
            # all of it resumes after PENDING (sequence 1) instead.
            watch = stub.Watch(m.WatchRequest(id=p.id, include_output=job.include_output,
                                              after_sequence=1 if job.include_output else 0),
                               timeout=120 * h.SLOW)
        extra = None
        if job.extra_watcher:
            extra = stub.Watch(m.WatchRequest(id=p.id, include_output=rng.random() < 0.5), timeout=120 * h.SLOW)
            if job.extra_watcher == "quit":
                # Leave mid-stream: after the SNAPSHOT, or a few events in (a
                # process that waits for its destroy has only the SNAPSHOT yet).
                waits = job.destroy_after is not None and job.kind != "echo_destroy_race"
                limit = 1 if waits else rng.randint(1, 3)
                guard = threading.Timer(5.0 * h.SLOW, extra.cancel)
                guard.start()
                try:
                    for i, _ in enumerate(extra):
                        if i + 1 >= limit:
                            break
                except grpc.RpcError:
                    pass
                guard.cancel()
                extra.cancel()
        if job.destroy_after is not None:
            if job.destroy_after:
                time.sleep(job.destroy_after)
            dreq = m.DestroyRequest(id=p.id, wait=job.wait == "destroy_wait")
            if job.grace is not None:
                dreq.grace_period.CopyFrom(h.duration(job.grace))
            t0 = time.monotonic()
            d = stub.Destroy(dreq, timeout=h.RPC_TIMEOUT + (job.grace or 0) + 10).process
            if job.wait == "destroy_wait":
                job.destroy_elapsed = time.monotonic() - t0
                job.terminal = d
                if not h.is_terminal(d):
                    self.problem("job %d (%s) %s: Destroy(wait) answered %s" % (job.index, job.kind, job.id, h.state(d)))
            elif not (d.destroyed and (d.canceled or h.is_terminal(d))):
                self.problem("job %d (%s) %s: Destroy answered destroyed=%s canceled=%s in %s"
                             % (job.index, job.kind, job.id, d.destroyed, d.canceled, h.state(d)))
        if watch is not None:
            job.events = h.drain(watch, "Watch(%s)" % p.id)
            for b in check_stream(job, job.events):
                self.problem("job %d (%s) %s: Watch: %s" % (job.index, job.kind, job.id, b))
            job.terminal = job.events[-1].process if job.events else None
        elif job.wait == "poll":
            end = time.monotonic() + 120 * h.SLOW
            while True:
                g = stub.GetProcess(m.GetProcessRequest(id=p.id), timeout=h.RPC_TIMEOUT)
                if h.is_terminal(g):
                    job.terminal = g
                    break
                if time.monotonic() > end:
                    raise AssertionError("not terminal within %.0fs of polling" % (120 * h.SLOW))
                time.sleep(0.005)
        if extra is not None and job.extra_watcher == "idle":
            extra.cancel()
        if job.terminal is None:
            self.problem("job %d (%s) %s: no terminal record" % (job.index, job.kind, job.id))
            return
        for b in check_record(job, job.terminal, final=job.wait == "destroy_wait"):
            self.problem("job %d (%s) %s: %s" % (job.index, job.kind, job.id, b))

    # -- watch-all clients that come and go ------------------------------------

    def watch_all_client(self, seed):
        rng = random.Random(seed)
        m = h.pb()
        ch = new_channel(self.server.address)
        stub = h.ProcessStub(ch)
        try:
            while not self.stop.is_set():
                sel = {"soak": self.run_id} if rng.random() < 0.7 else {}
                call = stub.Watch(m.WatchRequest(label_selector=sel, include_output=rng.random() < 0.3),
                                  timeout=600)
                timer = threading.Timer(rng.uniform(0.05, 1.5), call.cancel)
                timer.start()
                last = {}
                n = 0
                try:
                    for ev in call:
                        n += 1
                        pid = ev.process_id or ev.process.id
                        if h.event_type(ev) != "SNAPSHOT" and ev.sequence <= last.get(pid, 0):
                            self.problem("watch-all: %s sequence %d after %d" % (pid, ev.sequence, last[pid]))
                        last[pid] = max(last.get(pid, 0), ev.sequence)
                        if self.stop.is_set():
                            break
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        # A watcher too slow may be ended (SPEC §12 "Slow watchers").
                        with self.lock:
                            self.watch_all["ended_too_slow"] += 1
                    elif e.code() != grpc.StatusCode.CANCELLED:
                        self.problem("watch-all ended %s: %s" % (e.code().name, e.details()))
                finally:
                    timer.cancel()
                    call.cancel()
                with self.lock:
                    self.watch_all["streams"] += 1
                    self.watch_all["events"] += n
        finally:
            ch.close()


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def log(args, text):
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def settle(server, before, timeout):
    """Waits (deadline) until nothing runs or waits, no zombie is under spawnd
    and the descriptors came back to BEFORE; returns (measure, seconds, met)."""
    t0 = time.monotonic()
    idle = soaklib.wait_for(lambda: soaklib.targets_idle(server), timeout)

    def back():
        m = soaklib.measure(server)
        ok = (m["zombies"] == 0 and m["front"]["fds"] <= before["front"]["fds"]
              and m["launcher"]["fds"] <= before["launcher"]["fds"])
        return m if ok else None
    m = soaklib.wait_for(back, max(1.0, timeout - (time.monotonic() - t0)), interval=0.1)
    met = bool(idle) and m is not None
    return (m or soaklib.measure(server)), time.monotonic() - t0, met


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--watch-all", type=int, default=2, help="watch-all clients that come and go (default 2)")
    ap.add_argument("--spawnd", default=None, help="spawnd binary (default %s)" % soaklib.DEFAULT_SPAWND)
    ap.add_argument("--max-running", type=int, default=64,
                    help="spawnd's max_running (default 64; below --clients, starts wait PENDING)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="bound of the load phase (default 1800)")
    ap.add_argument("--settle-seconds", type=float, default=60.0, help="deadline for things to settle (default 60)")
    ap.add_argument("--fd-slack", type=int, default=2, help="front fds allowed above the baseline (default 2)")
    ap.add_argument("--skip", default="", help="comma-separated kinds to leave out of the mix")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress on stderr)")
    args = ap.parse_args()
    binary = soaklib.use_spawnd(args.spawnd)
    skip = {k for k in args.skip.split(",") if k}
    unknown = skip - set(KINDS)
    if unknown:
        sys.exit("--skip: unknown kinds %s (kinds: %s)" % (sorted(unknown), ", ".join(KINDS)))
    kinds = [k for k in KINDS if k not in skip]
    rng = random.Random(args.seed)
    jobs = [make_job(i, k, rng) for i, k in enumerate(rng.choices(kinds, [KINDS[k] for k in kinds], k=args.processes))]
    run_id = "soak-%d-%d" % (os.getpid(), int(time.time()))
    report = {"spawnd": binary, "processes": args.processes, "clients": args.clients,
              "max_running": args.max_running, "skipped_kinds": sorted(skip),
              "watch_all_clients": args.watch_all, "seed": args.seed, "run_id": run_id}
    problems = []
    server = h.Server(config_text(args.processes, args.max_running))
    server.start()
    try:
        log(args, "soak: spawnd %s (pid %d, launcher %d) on %s; %d processes, %d clients, %d watch-all clients"
            % (binary, server.pid, server.launcher_pid(), server.address, args.processes, args.clients, args.watch_all))
        # Warm-up: one of each kind (starts the zygotes, allocates gRPC's and the
        # registry's first structures), then the baseline.
        warm = Run(server, [make_job(-1, k, rng) for k in kinds], run_id + "-warmup", 120)
        warm.client(0)
        problems += ["warm-up: " + p for p in warm.problems]
        soaklib.wait_for(lambda: soaklib.targets_idle(server), 30)
        before = soaklib.wait_for(lambda: (lambda m: m if m["zombies"] == 0 else None)(soaklib.measure(server)), 10) \
            or soaklib.measure(server)
        run = Run(server, jobs, run_id, args.max_seconds)
        threads = [threading.Thread(target=run.client, args=(args.seed * 1000 + i,), daemon=True)
                   for i in range(args.clients)]
        watchers = [threading.Thread(target=run.watch_all_client, args=(args.seed * 2000 + i,), daemon=True)
                    for i in range(args.watch_all)]
        t0 = time.monotonic()
        for t in threads + watchers:
            t.start()
        peak = soaklib.measure(server)
        last_print = t0
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            m = soaklib.measure(server)
            if m["front"]["rss_kib"] and m["front"]["rss_kib"] > (peak["front"]["rss_kib"] or 0):
                peak["front"] = m["front"]
            for k in ("fds", "threads"):
                peak["front_max_" + k] = max(peak.get("front_max_" + k, 0), m["front"][k] or 0)
                peak["launcher_max_" + k] = max(peak.get("launcher_max_" + k, 0), m["launcher"][k] or 0)
            peak["max_tree_processes"] = max(peak.get("max_tree_processes", 0), m["tree_processes"])
            if time.monotonic() - last_print >= 10:
                last_print = time.monotonic()
                log(args, "soak: %d/%d done in %.0fs, front %d KiB %d fds %d threads, %d problems"
                    % (run.done, len(jobs), last_print - t0, m["front"]["rss_kib"], m["front"]["fds"],
                       m["front"]["threads"], len(run.problems)))
        load_seconds = time.monotonic() - t0
        run.stop.set()
        for t in threads + watchers:
            t.join(30)
            if t.is_alive():
                problems.append("a client thread did not finish within 30 s of the end")
        after, settle_s, met = settle(server, before, args.settle_seconds * h.SLOW)
        if not met:
            problems.append("did not settle within %.0fs (running/pending, zombies or descriptors)" % (args.settle_seconds * h.SLOW))

        # Final records: GetProcess of every process, checked again, and the
        # same terminal outcome as the client saw; ListProcesses has them all.
        started = [j for j in jobs if j.id]
        outcomes = collections.defaultdict(collections.Counter)
        for j in started:
            try:
                g = server.get(j.id)
            except grpc.RpcError as e:
                problems.append("job %d (%s) %s: GetProcess %s: %s" % (j.index, j.kind, j.id, e.code().name, e.details()))
                continue
            st = h.state(g)
            outcomes[j.kind][st + ("/" + h.kind(g) if g.HasField("error") else "")
                             + ("" if g.ran else " (never ran)")] += 1
            for b in check_record(j, g):
                problems.append("job %d (%s) %s: GetProcess: %s" % (j.index, j.kind, j.id, b))
            t = j.terminal
            if t is not None and (h.state(t), t.exit_code, t.signal, t.result, t.canceled) != \
                    (st, g.exit_code, g.signal, g.result, g.canceled):
                problems.append("job %d (%s) %s: the terminal event said %s, GetProcess says %s"
                                % (j.index, j.kind, j.id, h.show(t, 300), h.show(g, 300)))
        listed, token = set(), ""
        while True:
            resp = server.stub.ListProcesses(h.pb().ListProcessesRequest(
                label_selector={"soak": run_id}, page_size=500, page_token=token), timeout=h.RPC_TIMEOUT)
            listed.update(p.id for p in resp.processes)
            token = resp.next_page_token
            if not token:
                break
        missing = [j.id for j in started if j.id not in listed]
        if missing or len(listed) != len(started):
            problems.append("ListProcesses lists %d of the %d started (missing e.g. %s)"
                            % (len(listed), len(started), missing[:3]))

        if after["front"]["fds"] > before["front"]["fds"] + args.fd_slack:
            problems.append("front fds grew: %d -> %d" % (before["front"]["fds"], after["front"]["fds"]))
        if after["launcher"]["fds"] > before["launcher"]["fds"]:
            problems.append("launcher fds grew: %d -> %d" % (before["launcher"]["fds"], after["launcher"]["fds"]))
        for z in after["zygotes"]:
            b = next((x for x in before["zygotes"] if x["pid"] == z["pid"]), None)
            if b is not None and z["fds"] > b["fds"]:
                problems.append("zygote %s fds grew: %d -> %d" % (z["comm"], b["fds"], z["fds"]))
        if after["zombies"] > before["zombies"] or after["zombies"]:
            problems.append("zombies under spawnd after the load: %d %s" % (after["zombies"], after["zombie_list"]))
        problems += run.problems

        report.update({
            "started": len(started), "load_seconds": round(load_seconds, 2),
            "rate_per_second": round(len(started) / load_seconds, 1) if load_seconds else None,
            "time_bound_hit": run.time_bound_hit, "settle_seconds": round(settle_s, 2),
            "before": before, "peak": peak, "after": after,
            "outcomes": {k: dict(v) for k, v in sorted(outcomes.items())},
            "watch_all": dict(run.watch_all),
            "rpc_errors": {"%s %s" % k: v for k, v in run.rpc_errors.items()},
        })
    except Exception as e:  # report what was measured, and this
        problems.append("soak aborted: %s: %s" % (type(e).__name__, e))
    finally:
        try:
            server.stop()
        except AssertionError as e:
            problems.append("spawnd did not stop cleanly: %s" % str(e).split("\n--- spawnd stderr")[0])
    report["problems"] = len(problems)
    report["problem_list"] = problems[:200]
    report["problem_summary"] = [{"pattern": k, "count": n, "example": ex} for k, (n, ex) in summarize(problems)]
    return soaklib.finish(report, args.json, print_report, problems)


def summarize(problems):
    """[(pattern, (count, first example))]: problems with ids and numbers folded."""
    groups = collections.OrderedDict()
    for p in problems:
        key = re.sub(r"^job -?\d+ ", "job N ", p)
        key = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", key)
        key = re.sub(r"b'[^']*'|\"[^\"]*\"|\d+(\.\d+)?", "_", key.split("; now:")[0])[:300]
        n, ex = groups.get(key, (0, p))
        groups[key] = (n + 1, ex)
    return list(groups.items())


def print_report(r):
    if "started" not in r:
        print("soak: aborted before the end (%d problems)" % r["problems"])
        for p in r["problem_list"][:50]:
            print("  " + p)
        return
    print("soak: %d processes started in %.1fs (%.0f/s) by %d clients%s; settled in %.1fs"
          % (r["started"], r["load_seconds"], r["rate_per_second"] or 0, r["clients"],
             " (TIME BOUND HIT)" if r["time_bound_hit"] else "", r["settle_seconds"]))
    print(soaklib.format_measures([("before", r["before"]), ("after", r["after"])]))
    pk = r["peak"]
    print("  peak during the load: front %s KiB, %s fds, %s threads; launcher %s fds; %s processes under spawnd"
          % (pk["front"]["rss_kib"], pk.get("front_max_fds"), pk.get("front_max_threads"),
             pk.get("launcher_max_fds"), pk.get("max_tree_processes")))
    print("outcomes (final records):")
    for k, c in r["outcomes"].items():
        print("  %-26s %s" % (k, ", ".join("%s %d" % kv for kv in sorted(c.items()))))
    print("watch-all: %s" % r["watch_all"])
    if r["rpc_errors"]:
        print("RPC errors: %s" % r["rpc_errors"])
    print("problems: %d" % r["problems"])
    for text, (n, example) in summarize(r["problem_list"]):
        print("  %5d x %s\n          e.g. %s" % (n, text, example[:600]))
    print("soak: %s" % ("FAILED" if r["problems"] else "OK"))


if __name__ == "__main__":
    sys.exit(main())
