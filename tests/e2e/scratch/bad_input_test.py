"""Bad requests get a status naming the field, and the server keeps serving
(SPEC §3 status codes, §7 "bad input never crashes the server")."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"  # well-formed UUIDv7, never issued


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
            t0 = time.monotonic()
            err = self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, raw, b"", timeout=2.0)
            self.assertLess(time.monotonic() - t0, 2.0, path)
            self.assertTrue(err.details() is None or isinstance(err.details(), str))
        # A streaming call to an unknown method too.
        st = s.channel.unary_stream("/x.Y/Stream")
        self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, st, b"", timeout=2.0)
        self.assertServing(s)

    def test_many_bad_requests_in_a_row(self):
        s = self.server()
        raw = s.channel.unary_unary("/spawnd.v1.ProcessService/StartProcess")
        for i in range(200):
            with self.assertRaises(grpc.RpcError):
                raw(bytes([0xff, i & 0xff, 0x01]), timeout=h.RPC_TIMEOUT)
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
