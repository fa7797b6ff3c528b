"""Run: start and watch in one call (issue 11 item 1, SPEC §12): the events
from PENDING (or after after_sequence) to the terminal one, no leading
SNAPSHOT, start errors as the stream's status, a retry with the same
request_id attaching to its process, cancel leaving the process running
unless destroy_on_cancel."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

TARGETS = {
    "echo": "{function: builtin:echo}",
    "sleep": "{function: builtin:sleep}",
    "spew": "{function: builtin:spew}",
    "fail": "{function: builtin:fail}",
    "true": '{exec: ["/bin/true"]}',
}


def run_req(target, *args, request_id="", **kw):
    m = h.pb()
    return m.RunRequest(start=m.StartProcessRequest(target=target, args=list(args),
                                                    request_id=request_id), **kw)


class RunTest(h.E2ETest):

    def run_events(self, s, req, deadline=h.RPC_TIMEOUT):
        return h.drain(s.stub.Run(req, timeout=deadline), "Run")

    def assertStates(self, events, states):
        self.assertEqual([h.state(e.process) for e in events], states, h.show_events(events))
        self.assertEqual([e.sequence for e in events], list(range(events[0].sequence,
                                                                   events[0].sequence + len(events))))
        for e in events:
            self.assertEqual(h.event_type(e), "STATE_CHANGED", h.show_events(events))

    def test_events_from_pending_to_the_end(self):
        s = self.server(h.minimal_config(TARGETS))
        ev = self.run_events(s, run_req("echo", "a", "b"))
        self.assertStates(ev, ["PENDING", "RUNNING", "SUCCEEDED"])
        self.assertEqual(ev[0].sequence, 1)
        self.assertEqual(ev[-1].process.result, b"a b")
        p = self.run_events(s, run_req("fail", "ValueError", "no"))[-1].process
        self.assertState(p, "FAILED")
        self.assertKind(p, "RAISED")
        self.assertStates(self.run_events(s, run_req("true")), ["PENDING", "RUNNING", "SUCCEEDED"])

    def test_include_output(self):
        s = self.server(h.minimal_config(TARGETS))
        ev = self.run_events(s, run_req("spew", "stdout=3000", "stderr=1000", include_output=True))
        out = [e for e in ev if h.event_type(e) == "OUTPUT"]
        self.assertTrue(out, h.show_events(ev))
        self.assertEqual(sum(len(e.output.data) for e in out), 4000)
        self.assertEqual([e.sequence for e in ev], list(range(1, len(ev) + 1)))
        plain = self.run_events(s, run_req("spew", "stdout=3000"))
        self.assertFalse([e for e in plain if h.event_type(e) == "OUTPUT"])

    def test_start_errors_are_the_status(self):
        s = self.server(h.minimal_config(TARGETS))
        for req, code, mention in (
                (run_req("nosuch"), grpc.StatusCode.NOT_FOUND, "target"),
                (run_req("true", "arg"), grpc.StatusCode.INVALID_ARGUMENT, "args"),
                (h.pb().RunRequest(), grpc.StatusCode.INVALID_ARGUMENT, "start"),
                (run_req("echo", "x" * 70000), grpc.StatusCode.INVALID_ARGUMENT, "args[0]")):
            with self.subTest(code=code, mention=mention):
                call = s.stub.Run(req, timeout=h.RPC_TIMEOUT)
                with self.assertRaises(grpc.RpcError) as cm:
                    events = list(call)
                    self.fail("no error; events %s" % events)
                self.assertEqual(cm.exception.code(), code)
                self.assertIn(mention, cm.exception.details())

    def test_cancel_leaves_it_running(self):
        s = self.server(h.minimal_config(TARGETS))
        call = s.stub.Run(run_req("sleep"), timeout=h.RPC_TIMEOUT)
        first, second = next(call), next(call)
        self.assertEqual(h.state(second.process), "RUNNING")
        call.cancel()
        # Still running after the stream is gone; then destroyed by hand.
        h.wait_until(lambda: h.state(s.get(first.process_id)) == "RUNNING", h.RPC_TIMEOUT,
                     "the process to keep running")
        self.assertEqual(h.state(s.get(first.process_id)), "RUNNING")
        self.assertState(s.destroy(first.process_id, wait=True), "CANCELED")

    def test_destroy_on_cancel(self):
        s = self.server(h.minimal_config(TARGETS))
        call = s.stub.Run(run_req("sleep", destroy_on_cancel=True), timeout=h.RPC_TIMEOUT)
        first, second = next(call), next(call)
        self.assertEqual(h.state(second.process), "RUNNING")
        call.cancel()
        p = s.wait_terminal(first.process_id)
        self.assertState(p, "CANCELED")
        self.assertFlags(p, destroyed=True, canceled=True)
        # A stream that ran to its end destroys nothing.
        ev = self.run_events(s, run_req("echo", "x", destroy_on_cancel=True))
        self.assertState(ev[-1].process, "SUCCEEDED")

    def test_after_sequence_past_pending_of_a_new_process(self):
        """after_sequence past 1 (PENDING) on a Run that starts a new process
        is INVALID_ARGUMENT and starts nothing: never a process running for a
        stream that ends OK with no event and no id (SPEC §12)."""
        s = self.server(h.minimal_config(TARGETS))
        m = h.pb()
        for after in (2, 1000, 2**64 - 1):
            self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                lambda: list(s.stub.Run(run_req("sleep", after_sequence=after),
                                                        timeout=h.RPC_TIMEOUT)),
                                mention="after_sequence")
        self.assertEqual(list(s.stub.ListProcesses(m.ListProcessesRequest(),
                                                   timeout=h.RPC_TIMEOUT).processes), [])

    def test_retry_attaches_and_resumes(self):
        s = self.server(h.minimal_config(TARGETS))
        call = s.stub.Run(run_req("sleep", "400", request_id="job-1"), timeout=h.RPC_TIMEOUT)
        first, second = next(call), next(call)
        call.cancel()
        # The retry starts nothing: it attaches and resumes after RUNNING.
        ev = self.run_events(s, run_req("sleep", "400", request_id="job-1", after_sequence=2))
        self.assertStates(ev, ["SUCCEEDED"])
        self.assertEqual(ev[0].process_id, first.process_id)
        self.assertEqual(ev[0].sequence, 3)
        # From the first event again: replayed as they were sent.
        again = self.run_events(s, run_req("sleep", "400", request_id="job-1"))
        self.assertStates(again, ["PENDING", "RUNNING", "SUCCEEDED"])
        self.assertEqual(again[1].process.pid, second.process.pid)
        # At the last sequence: nothing to replay, the stream ends OK.
        self.assertEqual(self.run_events(s, run_req("sleep", "400", request_id="job-1",
                                                    after_sequence=3)), [])
        self.assertRpcError(grpc.StatusCode.INVALID_ARGUMENT, self.run_events, s,
                            run_req("sleep", "400", request_id="job-1", after_sequence=9),
                            mention="after_sequence")
        self.assertRpcError(grpc.StatusCode.ALREADY_EXISTS, self.run_events, s,
                            run_req("sleep", "1", request_id="job-1"), mention="request_id")
        # One process in all.
        listed = s.stub.ListProcesses(h.pb().ListProcessesRequest(), timeout=h.RPC_TIMEOUT)
        self.assertEqual([p.id for p in listed.processes], [first.process_id])

    def test_queued_run(self):
        s = self.server(h.minimal_config(TARGETS, extra="max_running: 1"))
        blocker = s.start_process("sleep")
        call = s.stub.Run(run_req("echo", "q"), timeout=h.RPC_TIMEOUT)
        first = next(call)
        self.assertEqual(h.state(first.process), "PENDING")
        s.destroy(blocker.id, wait=True)
        rest = h.drain(call, "Run")
        self.assertStates([first] + rest, ["PENDING", "RUNNING", "SUCCEEDED"])


if __name__ == "__main__":
    h.main()
