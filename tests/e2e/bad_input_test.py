"""Bad requests get a status naming the field, and the server keeps serving
(SPEC §3 status codes, §7 "bad input never crashes the server")."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"  # well-formed UUIDv7, never issued


# -- hand-made protobuf encodings ---------------------------------------------
# What a protobuf library will not produce (invalid UTF-8 in a string, a map key
# twice) is written by hand: field NUM, wire type 2 (length-delimited).

def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def entry(num, key, value):
    """One entry of map<string, string> field NUM."""
    return field(num, field(1, key) + field(2, value))


BAD_UTF8 = b"\xff\xfe"
# StartProcessRequest: target 1, args 2, labels 4, request_id 5.
# WatchRequest: id 1, label_selector 2. Get/Destroy: id 1.
# ListProcessesRequest: target 1, label_selector 3, page_token 5. Health: service 1.
START = "/spawnd.v1.ProcessService/StartProcess"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
STREAMS = ("/spawnd.v1.ProcessService/Watch", HEALTH_WATCH)


class BadInputTest(h.E2ETest):

    def start_raw(self, s, **fields):
        req = h.pb().StartProcessRequest(**fields)
        return s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT)

    def test_missing_target(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, mention="target")
        self.assertServing(s)
        self.assertRpcError(INVALID, self.start_raw, s, args=["a"], input=b"x", mention="target")
        self.assertServing(s)

    def test_target_name_too_long(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="t" * 300, mention="target")
        self.assertServing(s)

    def test_target_name_at_cap_is_not_found(self):
        s = self.server()
        self.assertRpcError(NOT_FOUND, self.start_raw, s, target="t" * 256)
        self.assertServing(s)

    def test_too_many_args(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", args=["a"] * 1025, mention="args")
        self.assertServing(s)

    def test_args_at_cap_run(self):
        s = self.server()
        p = s.run("echo", *(["a"] * 1024))
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(p.result, b" ".join([b"a"] * 1024))

    def test_arg_too_long(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", args=["x" * (64 * 1024 + 1)],
                            mention="args")
        self.assertServing(s)

    def test_arg_at_cap_runs(self):
        s = self.server()
        p = s.run("echo", "x" * (64 * 1024))
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(len(p.result), 64 * 1024)

    def test_too_many_labels(self):
        s = self.server()
        labels = {"k%02d" % i: "v" for i in range(65)}
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", labels=labels, mention="labels")
        self.assertServing(s)

    def test_label_key_too_long(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", labels={"k" * 257: "v"},
                            mention="labels")
        self.assertServing(s)

    def test_label_value_too_long(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", labels={"k": "v" * 257},
                            mention="labels")
        self.assertServing(s)

    def test_labels_at_cap_run(self):
        s = self.server()
        labels = {("k%02d" % i).ljust(256, "k"): "v" * 256 for i in range(64)}
        p = s.run("noop", labels=labels)
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(dict(p.labels), labels)

    def test_negative_timeout(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="sleep", timeout=h.duration(-1),
                            mention="timeout")
        self.assertServing(s)

    def test_negative_destroy_grace_period(self):
        s = self.server()
        self.assertRpcError(INVALID, self.start_raw, s, target="sleep",
                            destroy_grace_period=h.duration(0, -1000000), mention="destroy_grace_period")
        self.assertServing(s)

    def test_malformed_duration(self):
        s = self.server()
        # nanos must be within +-999,999,999 and have the sign of seconds.
        self.assertRpcError(INVALID, self.start_raw, s, target="sleep",
                            timeout=h.duration(1, 2000000000), mention="timeout")
        self.assertRpcError(INVALID, self.start_raw, s, target="sleep",
                            timeout=h.duration(1, -5), mention="timeout")
        self.assertServing(s)

    def test_negative_destroy_grace(self):
        s = self.server()
        started = s.start_process("sleep")
        self.assertRpcError(INVALID, s.destroy, started.id, grace=h.duration(-1), mention="grace_period")
        d = s.destroy(started.id, wait=True)
        self.assertState(d, "CANCELED")

    def test_unknown_target(self):
        s = self.server()
        err = self.assertRpcError(NOT_FOUND, self.start_raw, s, target="no-such-target")
        self.assertTrue("target" in (err.details() or ""), "details should name the target: %r" % err.details())
        self.assertServing(s)

    def test_unknown_process_id(self):
        s = self.server()
        self.assertRpcError(NOT_FOUND, s.get, UNKNOWN_ID)
        self.assertRpcError(NOT_FOUND, s.destroy, UNKNOWN_ID)
        self.assertRpcError(NOT_FOUND, s.destroy, UNKNOWN_ID, wait=True)
        self.assertRpcError(NOT_FOUND, s.watch_all_events, UNKNOWN_ID)
        self.assertServing(s)

    def test_empty_id(self):
        s = self.server()
        self.assertRpcError(INVALID, s.get, "", mention="id")
        self.assertRpcError(INVALID, s.destroy, "", mention="id")
        self.assertServing(s)

    def test_undecodable_request(self):
        s = self.server()
        raw = s.channel.unary_unary("/spawnd.v1.ProcessService/StartProcess",
                                    request_serializer=None, response_deserializer=None)
        self.assertRpcError(INVALID, raw, b"\xff\xff\xff", timeout=h.RPC_TIMEOUT)
        for method in ("GetProcess", "Destroy", "ListTargets"):
            raw = s.channel.unary_unary("/spawnd.v1.ProcessService/" + method)
            self.assertRpcError(INVALID, raw, b"\xff\xff\xff", timeout=h.RPC_TIMEOUT)
        watch = s.channel.unary_stream("/spawnd.v1.ProcessService/Watch")
        self.assertRpcError(INVALID, watch, b"\xff\xff\xff", timeout=h.RPC_TIMEOUT)
        self.assertServing(s)

    def test_unknown_method(self):
        s = self.server()
        for path in ("/spawnd.v1.ProcessService/Nope", "/x.Y/Z"):
            raw = s.channel.unary_unary(path)
            # Answered UNIMPLEMENTED, not left to its deadline (DEADLINE_EXCEEDED).
            err = self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, raw, b"", timeout=h.RPC_TIMEOUT)
            self.assertTrue(err.details() is None or isinstance(err.details(), str))
        # A streaming call to an unknown method too.
        st = s.channel.unary_stream("/x.Y/Stream")
        self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, st, b"", timeout=h.RPC_TIMEOUT)
        self.assertServing(s)

    def test_many_bad_requests_in_a_row(self):
        s = self.server()
        raw = s.channel.unary_unary("/spawnd.v1.ProcessService/StartProcess")
        for i in range(200):
            with self.assertRaises(grpc.RpcError):
                raw(bytes([0xff, i & 0xff, 0x01]), timeout=h.RPC_TIMEOUT)
        self.assertServing(s)

    # -- strings from the network (SPEC §12) ------------------------------------

    def raw_call(self, s, path, data):
        """Sends DATA as the request of PATH; returns the response bytes or,
        for a stream, the list of them."""
        if path in STREAMS:
            return list(s.channel.unary_stream(path)(data, timeout=h.RPC_TIMEOUT))
        return s.channel.unary_unary(path)(data, timeout=h.RPC_TIMEOUT)

    def assertRefused(self, s, path, data, mention):
        self.assertRpcError(INVALID, self.raw_call, s, path, data, mention=mention)

    def assertNothingStored(self, s):
        resp = s.stub.ListProcesses(h.pb().ListProcessesRequest(), timeout=h.RPC_TIMEOUT)
        self.assertEqual(list(resp.processes), [], "a refused request left a record")

    def test_invalid_utf8_refused_in_every_string_field(self):
        s = self.server()
        echo = field(1, "echo")
        cases = [
            (START, field(1, BAD_UTF8), "target"),
            (START, echo + field(2, "ok") + field(2, BAD_UTF8), "args[1]"),
            (START, echo + entry(4, BAD_UTF8, "v"), "labels"),
            (START, echo + entry(4, "k", BAD_UTF8), "labels"),
            (START, echo + field(5, BAD_UTF8), "request_id"),
            (START, echo + field(2, b"\xc0\x80"), "args[0]"),        # overlong NUL
            (START, echo + field(2, b"\xed\xa0\x80"), "args[0]"),    # a surrogate
            (START, echo + field(2, b"ok\xe6\x97"), "args[0]"),       # cut at the end
            ("/spawnd.v1.ProcessService/GetProcess", field(1, BAD_UTF8), "id"),
            ("/spawnd.v1.ProcessService/Destroy", field(1, BAD_UTF8), "id"),
            ("/spawnd.v1.ProcessService/Watch", field(1, BAD_UTF8), "id"),
            ("/spawnd.v1.ProcessService/Watch", entry(2, "k", BAD_UTF8), "label_selector"),
            ("/spawnd.v1.ProcessService/Watch", entry(2, BAD_UTF8, "v"), "label_selector"),
            ("/spawnd.v1.ProcessService/ListProcesses", field(1, BAD_UTF8), "target"),
            ("/spawnd.v1.ProcessService/ListProcesses", entry(3, "k", BAD_UTF8), "label_selector"),
            ("/spawnd.v1.ProcessService/ListProcesses", field(5, BAD_UTF8), "page_token"),
            (HEALTH_CHECK, field(1, b"spawnd.target.echo" + BAD_UTF8), "service"),
            (HEALTH_WATCH, field(1, b"spawnd.target.echo" + BAD_UTF8), "service"),
        ]
        for path, data, name in cases:
            with self.subTest(path=path, field=name):
                self.assertRefused(s, path, data, name + ":")
        # ListTargetsRequest has no field: an unknown one is skipped, as proto3 says.
        resp = h.pb().ListTargetsResponse.FromString(
            self.raw_call(s, "/spawnd.v1.ProcessService/ListTargets", field(1, BAD_UTF8)))
        self.assertIn("echo", [t.name for t in resp.targets])
        # Nothing was stored that a client could not parse: a live watch-all
        # and the listing keep working.
        self.assertNothingStored(s)
        self.assertServing(s)

    def test_embedded_nul_is_refused_not_truncated(self):
        s = self.server()
        m = h.pb()
        # A real client sends these: a NUL is a valid character of a str.
        self.assertRpcError(INVALID, self.start_raw, s, target="echo\0junk", mention="target:")
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", args=["a", "b\0c"],
                            mention="args[1]:")
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", labels={"k\0x": "v"},
                            mention="labels:")
        self.assertRpcError(INVALID, self.start_raw, s, target="echo", labels={"k": "v\0x"},
                            mention="labels:")
        for rid in ("job\0A", "job\0B"):
            self.assertRpcError(INVALID, self.start_raw, s, target="echo", request_id=rid,
                                mention="request_id:")
        self.assertNothingStored(s)
        p = s.run("echo", "x")
        for bad in (p.id + "\0junk", "\0"):
            self.assertRpcError(INVALID, s.get, bad, mention="id:")
            self.assertRpcError(INVALID, s.destroy, bad, mention="id:")
            self.assertRpcError(INVALID, s.watch_all_events, bad, mention="id:")
        self.assertRpcError(INVALID, s.watch_all_events, "", label_selector={"k": "\0"},
                            mention="label_selector:")
        for req in (m.ListProcessesRequest(target="echo\0junk"),
                    m.ListProcessesRequest(label_selector={"k\0": "v"}),
                    m.ListProcessesRequest(page_token="p1\0junk")):
            err = self.assertRpcError(INVALID, s.stub.ListProcesses, req, timeout=h.RPC_TIMEOUT)
            self.assertRegex(err.details(), r"^(target|label_selector|page_token):")
        self.assertRefused(s, HEALTH_CHECK, field(1, "spawnd.target.echo\0junk"), "service:")
        self.assertRefused(s, HEALTH_WATCH, field(1, "spawnd.target.echo\0junk"), "service:")
        self.assertRefused(s, HEALTH_CHECK, field(1, "\0"), "service:")
        self.assertServing(s)

    def test_map_key_sent_twice(self):
        s = self.server()
        echo = field(1, "echo")
        for data in (echo + entry(4, "k", "a") + entry(4, "k", "b"),
                     echo + entry(4, "k", "a") + entry(4, "j", "c") + entry(4, "k", "a")):
            self.assertRefused(s, START, data, "labels:")
        self.assertNothingStored(s)
        p = s.run("echo", labels={"k": "a"})
        self.assertRefused(s, "/spawnd.v1.ProcessService/Watch",
                           entry(2, "k", "b") + entry(2, "k", "a"), "label_selector:")
        self.assertRefused(s, "/spawnd.v1.ProcessService/ListProcesses",
                           entry(3, "k", "b") + entry(3, "k", "a"), "label_selector:")
        # One key, once: the record shows what the selector matches.
        resp = s.stub.ListProcesses(h.pb().ListProcessesRequest(label_selector={"k": "a"}),
                                    timeout=h.RPC_TIMEOUT)
        self.assertEqual([(r.id, dict(r.labels)) for r in resp.processes], [(p.id, {"k": "a"})])
        self.assertServing(s)

    def test_non_ascii_strings_are_accepted_intact(self):
        s = self.server()
        labels = {"é": "日本", "k": "é", "日本": ""}
        p = s.run("echo", "日本", "é", labels=labels)
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(p.result, "日本 é".encode())
        got = s.get(p.id)
        self.assertEqual(dict(got.labels), labels)
        self.assertEqual(list(got.args), ["日本", "é"])
        resp = s.stub.ListProcesses(h.pb().ListProcessesRequest(label_selector={"é": "日本"}),
                                    timeout=h.RPC_TIMEOUT)
        self.assertEqual([dict(r.labels) for r in resp.processes], [labels])
        events = s.watch_all_events(p.id)
        self.assertEqual(dict(events[0].process.labels), labels)

    def test_reflection_strings_are_checked_too(self):
        s = self.server()
        call = s.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # ServerReflectionRequest: host 1, file_by_filename 3, file_containing_symbol 4.
        for data, name in ((field(3, "spawnd/v1/spawnd.proto\0junk"), "file_by_filename:"),
                           (field(4, b"spawnd.v1.Process" + BAD_UTF8), "file_containing_symbol:"),
                           (field(1, BAD_UTF8) + field(7, "*"), "host:")):
            with self.subTest(field=name):
                self.assertRpcError(INVALID, lambda: list(call(iter([data]), timeout=h.RPC_TIMEOUT)),
                                    mention=name)
        # The same name without the NUL is found.
        (resp,) = list(call(iter([field(3, "spawnd/v1/spawnd.proto")]), timeout=h.RPC_TIMEOUT))
        self.assertIn(b"spawnd/v1/spawnd.proto", resp)
        self.assertServing(s)

    # -- page tokens (SPEC §12) ---------------------------------------------------

    def test_forged_page_tokens(self):
        s = self.server()
        m = h.pb()
        for _ in range(3):
            s.run("noop", labels={"team": "a"})
        s.run("echo", labels={"team": "b"})

        def page(token="", size=1, **filters):
            return s.stub.ListProcesses(m.ListProcessesRequest(page_size=size, page_token=token,
                                                               **filters),
                                        timeout=h.RPC_TIMEOUT)

        first = page(target="noop", label_selector={"team": "a"})
        token = first.next_page_token
        self.assertTrue(token)
        # The real token continues, with another page_size too.
        second = page(token, size=10, target="noop", label_selector={"team": "a"})
        self.assertEqual(len(second.processes), 2)
        self.assertNotIn(first.processes[0].id, [r.id for r in second.processes])

        flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
        forged = ["p-1", "p+1", "p 1", "p0x1", "p1", "P1", "p01", "x" + token[1:], token + "0",
                  token[:-1], token.upper(), flipped, " " + token, token + " "]
        for t in forged:
            with self.subTest(token=t):
                self.assertRpcError(INVALID, page, t, target="noop", label_selector={"team": "a"},
                                    mention="page_token:")
        # A token of one query is not one of another.
        for other in ({}, {"target": "noop"}, {"label_selector": {"team": "a"}},
                      {"target": "echo", "label_selector": {"team": "a"}},
                      {"target": "noop", "label_selector": {"team": "b"}},
                      {"target": "noop", "label_selector": {"team": "a", "x": "y"}},
                      {"target": "noop", "label_selector": {"team": "a"}, "states": [3]}):
            with self.subTest(query=other):
                self.assertRpcError(INVALID, page, token, mention="page_token:", **other)
        self.assertServing(s)

    # -- resume points (SPEC §12) ----------------------------------------------

    def test_after_sequence_past_the_last_event(self):
        s = self.server()
        p = s.start_process("sleep")

        def snapshot_seq():
            call = s.watch(p.id)
            first = next(call)
            call.cancel()
            return first.sequence, h.state(first.process)

        h.wait_until(lambda: snapshot_seq()[1] == "RUNNING", h.RPC_TIMEOUT, "sleep to run")
        last, _ = snapshot_seq()
        for n in ((1 << 64) - 1, last + 1):
            with self.subTest(after_sequence=n):
                self.assertRpcError(INVALID, s.watch_all_events, p.id, after_sequence=n,
                                    mention="after_sequence:")
        # Equal: nothing replayed, then the live events.
        call = s.watch(p.id, after_sequence=last)
        s.destroy(p.id)
        events = h.drain(call)
        self.assertEqual([ev.sequence for ev in events], [last + 1], h.show_events(events))
        self.assertState(events[0].process, "CANCELED")
        # Ended: equal ends OK at once, with nothing; past it is refused.
        self.assertEqual(s.watch_all_events(p.id, after_sequence=last + 1), [])
        self.assertRpcError(INVALID, s.watch_all_events, p.id, after_sequence=last + 2,
                            mention="after_sequence:")
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
