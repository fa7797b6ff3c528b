"""Trace context (issue 10, point 6; SPEC §12 "Trace context").

A W3C `traceparent` in StartProcess's metadata is kept on the record
(Process.traceparent in StartProcess's answer, GetProcess, ListProcesses and
Watch snapshots), logged with the process's lines, and set as TRACEPARENT in
the child's environment besides its target's env, for every start method and
exec targets (the child reports its own environment: the whoami builtin lists
`environ`, /usr/bin/env prints it). An invalid one is ignored: the call
succeeds, the record has none, the child gets none.
"""

import unittest

import spawnd_harness as h

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WHOAMI = "{function: builtin:whoami, start_method: %s, env: {E2E_OWN: mine%s}}"


def config():
    return h.minimal_config({
        "fork": WHOAMI % ("fork", ""),
        "forkserver": WHOAMI % ("forkserver", ""),
        "spawn": WHOAMI % ("spawn", ""),
        "library": ('{function: {library: %s, symbol: spawnd_sample_whoami}, '
                    'start_method: spawn, env: {E2E_OWN: mine}}' % h.yaml_str(h.samples_library())),
        # The target sets one of its own: the request's replaces it.
        "own": WHOAMI % ("fork", ", TRACEPARENT: from-the-config"),
        # Pre-started children get it with their call, before the function runs.
        "prestart": "{function: builtin:whoami, prestart: 1, env: {E2E_OWN: mine}}",
        "prestart_own": ("{function: builtin:whoami, start_method: forkserver, prestart: 1, "
                         "env: {E2E_OWN: mine, TRACEPARENT: from-the-config}}"),
        "env": '{exec: ["/usr/bin/env"], env: {E2E_OWN: mine}}',
    })


def child_env(p):
    """The child's environment as it reported it: {KEY: VALUE}."""
    text = p.result.decode() if p.result else p.stdout_tail.decode()
    out = {}
    for line in text.splitlines():
        if p.result:
            if not line.startswith("env "):
                continue
            line = line[4:]
        k, _, v = line.partition("=")
        out[k] = v
    return out


class TraceContextTest(h.E2ETest):
    def start(self, s, target, metadata):
        req = h.pb().StartProcessRequest(target=target)
        return s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=metadata).process

    def test_traceparent_reaches_every_kind_of_child(self):
        s = self.server(config())
        for target in ("fork", "forkserver", "spawn", "library", "own", "env", "prestart",
                       "prestart_own"):
            with self.subTest(target=target):
                p = self.start(s, target, [("traceparent", TP)])
                self.assertEqual(p.traceparent, TP, h.show(p))
                end = s.wait_terminal(p.id)
                self.assertState(end, "SUCCEEDED")
                env = child_env(end)
                self.assertEqual(env.get("TRACEPARENT"), TP, h.show(end))
                self.assertEqual(env.get("E2E_OWN"), "mine", "the target's env stays")
                self.assertEqual(list(env).count("TRACEPARENT"), 1)
                self.assertEqual(end.traceparent, TP)
                self.assertEqual(s.get(p.id).traceparent, TP)

    def test_returned_by_get_list_and_watch_and_logged(self):
        s = self.server(config())
        p = self.start(s, "fork", [("traceparent", TP)])
        snap = next(iter(s.watch(p.id)))
        self.assertEqual(h.event_type(snap), "SNAPSHOT")
        self.assertEqual(snap.process.traceparent, TP)
        s.wait_terminal(p.id)
        listed = s.stub.ListProcesses(h.pb().ListProcessesRequest(), timeout=h.RPC_TIMEOUT)
        self.assertEqual([q.traceparent for q in listed.processes if q.id == p.id], [TP])

        def logged():
            msgs = {r.get("msg") for r in s.log_records()
                    if r.get("process_id") == p.id and r.get("traceparent") == TP}
            return {"process accepted", "process running", "process ended"} <= msgs
        h.wait_until(logged, h.RPC_TIMEOUT, "the process's log lines to carry its traceparent")

    def test_none_or_invalid_is_ignored(self):
        s = self.server(config())
        cases = [
            [],
            [("traceparent", TP.upper())],
            [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")],
            [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")],
            [("traceparent", "ff" + TP[2:])],
            [("traceparent", TP[:-1])],
            [("traceparent", TP + "-00")],
            [("traceparent", TP), ("traceparent", TP)],
            [("traceparent", "00-" + "a" * 300)],
        ]
        for md in cases:
            with self.subTest(metadata=md):
                p = self.start(s, "fork", md)
                self.assertEqual(p.traceparent, "")
                end = s.wait_terminal(p.id)
                self.assertState(end, "SUCCEEDED")
                self.assertNotIn("TRACEPARENT", child_env(end))
        # The target's own TRACEPARENT stays when the request has none.
        end = s.wait_terminal(self.start(s, "own", []).id)
        self.assertEqual(child_env(end).get("TRACEPARENT"), "from-the-config")
        # A later version is parsed by its known part and kept as sent.
        later = "01" + TP[2:] + "-abcd"
        end = s.wait_terminal(self.start(s, "spawn", [("traceparent", later)]).id)
        self.assertEqual(end.traceparent, later)
        self.assertEqual(child_env(end).get("TRACEPARENT"), later)

    def test_run_carries_it_too(self):
        s = self.server(config())
        m = h.pb()
        req = m.RunRequest(start=m.StartProcessRequest(target="spawn"))
        events = list(s.stub.Run(req, timeout=h.RPC_TIMEOUT, metadata=[("traceparent", TP)]))
        self.assertTrue(events and h.is_terminal(events[-1].process), h.show_events(events))
        self.assertEqual(events[0].process.traceparent, TP)
        self.assertEqual(child_env(events[-1].process).get("TRACEPARENT"), TP)

    def test_retry_with_request_id_keeps_the_first(self):
        s = self.server(config())
        req = h.pb().StartProcessRequest(target="fork", request_id="r1")
        a = s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=[("traceparent", TP)]).process
        other = "00-11111111111111111111111111111111-2222222222222222-01"
        b = s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=[("traceparent", other)]).process
        self.assertEqual(a.id, b.id, "a retry in another span is the same request")
        self.assertEqual(b.traceparent, TP)


if __name__ == "__main__":
    unittest.main()
