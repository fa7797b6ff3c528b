"""Bearer tokens (issue 9, SPEC §7): UNAUTHENTICATED without a known token,
PERMISSION_DENIED for a target the token may not use (StartProcess, and Get,
Destroy, Watch of its processes), listings limited to what the token may see,
health open unless protect_health, tokens never in the log, the file's mode
checked, re-read on SIGHUP, and spawnctl --token / $SPAWND_TOKEN."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402
import std_services as std  # noqa: E402

ADMIN = "admin-0123456789abcdef"
APP = "app-fedcba9876543210"
LATER = "later-token-42"

SPAWNCTL = None
try:
    SPAWNCTL = h._find("tools/spawnctl/spawnctl", "SPAWNCTL_BIN")
except FileNotFoundError:
    pass


def bearer(token):
    return [("authorization", "Bearer " + token)]


class AuthTest(h.E2ETest):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="spawnd-auth-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.tokens = os.path.join(self.dir, "tokens")
        self.write_tokens("# who may do what\n%s *\n%s echo,sleep   # the app\n" % (ADMIN, APP))

    def write_tokens(self, text, mode=0o440):
        with open(self.tokens, "w") as f:
            f.write(text)
        os.chmod(self.tokens, mode)

    def config(self, protect_health=False):
        return ('listen: ["127.0.0.1:0"]\n'
                "auth: {tokens_file: %s, protect_health: %s}\n"
                "targets:\n"
                "  echo: {function: builtin:echo}\n"
                "  sleep: {function: builtin:sleep}\n"
                "  crash: {function: builtin:crash}\n"
                % (h.yaml_str(self.tokens), "true" if protect_health else "false"))

    def start(self, s, token, target, *args):
        req = h.pb().StartProcessRequest(target=target, args=list(args))
        md = bearer(token) if token is not None else None
        return s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=md).process

    def code_of(self, fn):
        try:
            fn()
        except grpc.RpcError as e:
            return e.code()
        return grpc.StatusCode.OK

    def test_tokens_and_targets(self):
        s = self.server(self.config())
        pb = h.pb()
        # No token, an unknown one, or the wrong scheme: UNAUTHENTICATED.
        for md in (None, bearer("nope"), [("authorization", "Basic " + ADMIN)]):
            self.assertEqual(self.code_of(lambda: s.stub.ListTargets(
                pb.ListTargetsRequest(), timeout=h.RPC_TIMEOUT, metadata=md)),
                grpc.StatusCode.UNAUTHENTICATED, md)
        self.assertEqual(self.code_of(lambda: self.start(s, None, "echo", "x")),
                         grpc.StatusCode.UNAUTHENTICATED)
        # The admin may run anything; the app only echo and sleep.
        crashing = self.start(s, ADMIN, "sleep")
        self.assertTrue(crashing.id)
        other = self.start(s, ADMIN, "crash")
        self.assertEqual(self.code_of(lambda: self.start(s, APP, "crash")),
                         grpc.StatusCode.PERMISSION_DENIED)
        mine = self.start(s, APP, "sleep")
        # The record and the log name the caller by its token's fingerprint.
        fp = "token:" + hashlib.sha256(APP.encode()).hexdigest()[:8]
        self.assertEqual(mine.caller, fp)
        self.assertTrue(any(r.get("msg") == "process accepted" and r.get("caller") == fp
                            for r in s.log_records()))
        # The same request_id from another token is another request: each
        # caller has its own ids, so that one token can neither squat nor
        # probe another's (no ALREADY_EXISTS across tokens).
        req = pb.StartProcessRequest(target="echo", args=["x"], request_id="job-1")
        apps = s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=bearer(APP)).process
        admins = s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=bearer(ADMIN)).process
        self.assertNotEqual(admins.id, apps.id)
        other_req = pb.StartProcessRequest(target="echo", args=["y"], request_id="job-2")
        s.stub.StartProcess(other_req, timeout=h.RPC_TIMEOUT, metadata=bearer(APP))
        self.assertTrue(s.stub.StartProcess(
            pb.StartProcessRequest(target="echo", args=["z"], request_id="job-2"),
            timeout=h.RPC_TIMEOUT, metadata=bearer(ADMIN)).process.id)
        for tok, p in ((APP, apps), (ADMIN, admins)):
            again = s.stub.StartProcess(req, timeout=h.RPC_TIMEOUT, metadata=bearer(tok)).process
            self.assertEqual(again.id, p.id)
        self.assertEqual(self.code_of(lambda: s.stub.StartProcess(
            pb.StartProcessRequest(target="echo", args=["w"], request_id="job-1"),
            timeout=h.RPC_TIMEOUT, metadata=bearer(APP))), grpc.StatusCode.ALREADY_EXISTS)
        for call in (
                lambda: s.stub.GetProcess(pb.GetProcessRequest(id=other.id), timeout=h.RPC_TIMEOUT,
                                          metadata=bearer(APP)),
                lambda: s.stub.Destroy(pb.DestroyRequest(id=other.id), timeout=h.RPC_TIMEOUT,
                                       metadata=bearer(APP)),
                lambda: list(s.stub.Watch(pb.WatchRequest(id=other.id), timeout=h.RPC_TIMEOUT,
                                          metadata=bearer(APP)))):
            self.assertEqual(self.code_of(call), grpc.StatusCode.PERMISSION_DENIED)
        got = s.stub.GetProcess(pb.GetProcessRequest(id=mine.id), timeout=h.RPC_TIMEOUT,
                                metadata=bearer(APP))
        self.assertEqual(got.id, mine.id)
        # Listings show only what the token may see.
        names = {t.name for t in s.stub.ListTargets(pb.ListTargetsRequest(), timeout=h.RPC_TIMEOUT,
                                                    metadata=bearer(APP)).targets}
        self.assertEqual(names, {"echo", "sleep"})
        names = {t.name for t in s.stub.ListTargets(pb.ListTargetsRequest(), timeout=h.RPC_TIMEOUT,
                                                    metadata=bearer(ADMIN)).targets}
        self.assertEqual(names, {"echo", "sleep", "crash"})
        listed = s.stub.ListProcesses(pb.ListProcessesRequest(page_size=100), timeout=h.RPC_TIMEOUT,
                                      metadata=bearer(APP)).processes
        self.assertEqual({p.target for p in listed}, {"sleep", "echo"})
        self.assertNotIn(other.id, {p.id for p in listed})
        # Watch-all: the app's stream carries none of the crash's events.
        events, done = [], threading.Event()
        stream = s.stub.Watch(pb.WatchRequest(), timeout=h.RPC_TIMEOUT * 3, metadata=bearer(APP))

        def read():
            try:
                for ev in stream:
                    events.append(ev)
                    if ev.process.target == "echo" and h.is_terminal(ev.process):
                        break
            except grpc.RpcError:
                pass
            done.set()
        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.start(s, ADMIN, "crash")
        self.start(s, ADMIN, "echo", "seen")
        self.assertTrue(done.wait(h.RPC_TIMEOUT * 3), "the app's watch-all never saw echo end")
        stream.cancel()
        self.assertEqual({ev.process.target for ev in events if ev.process.target} - {"echo", "sleep"},
                         set())
        # Destroy with the right token works.
        d = s.stub.Destroy(pb.DestroyRequest(id=mine.id, wait=True), timeout=h.RPC_TIMEOUT,
                           metadata=bearer(APP))
        self.assertEqual(h.state(d.process), "CANCELED")
        s.stub.Destroy(pb.DestroyRequest(id=crashing.id, wait=True), timeout=h.RPC_TIMEOUT,
                       metadata=bearer(ADMIN))
        # Health and reflection stay open for probes.
        self.assertEqual(std.HealthStub(s.channel).check(""), "SERVING")
        # Tokens never reach the log.
        log = s.stderr_text()
        for tok in (ADMIN, APP, "nope"):
            self.assertNotIn(tok, log)
        self.assertIn("call refused: missing or unknown bearer token", log)

    def test_protect_health(self):
        s = self.server(self.config(protect_health=True))
        hs = std.HealthStub(s.channel)
        self.assertEqual(self.code_of(lambda: hs.check("")), grpc.StatusCode.UNAUTHENTICATED)
        r = hs.Check(std.health_pb().HealthCheckRequest(service=""), timeout=h.RPC_TIMEOUT,
                     metadata=bearer(APP))
        self.assertEqual(std.status_name(r), "SERVING")

    def test_tokens_file_readable_by_others_is_refused(self):
        self.write_tokens("%s *\n" % ADMIN, mode=0o644)
        path = os.path.join(self.dir, "spawnd.yaml")
        with open(path, "w") as f:
            f.write(self.config())
        r = subprocess.run([h.spawnd_binary(), "--config", path], capture_output=True, text=True,
                           timeout=h.START_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s: readable or writable by others (mode 0644)" % self.tokens, r.stderr)
        self.assertNotIn(ADMIN, r.stderr)

    def test_tokens_reread_on_sighup(self):
        s = self.server(self.config())
        self.assertEqual(self.code_of(lambda: self.start(s, LATER, "echo", "x")),
                         grpc.StatusCode.UNAUTHENTICATED)
        self.write_tokens("%s echo\n" % LATER)
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: any(r.get("msg") == "tokens re-read" for r in s.log_records()),
                     h.RPC_TIMEOUT, "the tokens to be re-read")
        self.assertTrue(self.start(s, LATER, "echo", "x").id)
        self.assertEqual(self.code_of(lambda: self.start(s, ADMIN, "echo", "x")),
                         grpc.StatusCode.UNAUTHENTICATED, "a removed token still works")

    def test_open_streams_follow_a_reload(self):
        """A token revoked (or narrowed) by SIGHUP reads nothing more on the
        streams it opened before: its watch-all hears no new event, its Watch
        of a process ends PERMISSION_DENIED at the next event; a token kept
        goes on as before."""
        import threading
        pb = h.pb()
        s = self.server(self.config())
        mine = self.start(s, APP, "sleep")
        single = s.stub.Watch(pb.WatchRequest(id=mine.id), timeout=h.RPC_TIMEOUT * 3,
                              metadata=bearer(APP))
        next(single)  # its SNAPSHOT
        streams = {tok: s.stub.Watch(pb.WatchRequest(), timeout=h.RPC_TIMEOUT * 3,
                                     metadata=bearer(tok)) for tok in (APP, ADMIN)}
        seen = {APP: [], ADMIN: []}

        def read(tok):
            try:
                for ev in streams[tok]:
                    seen[tok].append(ev.process.args[:1])
            except grpc.RpcError:
                pass
        threads = [threading.Thread(target=read, args=(t,), daemon=True) for t in streams]
        for t in threads:
            t.start()
        self.start(s, ADMIN, "echo", "before")
        h.wait_until(lambda: ["before"] in seen[APP] and ["before"] in seen[ADMIN],
                     h.RPC_TIMEOUT, "both watch-alls to hear the first echo")
        self.write_tokens("%s *\n" % ADMIN)
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: any(r.get("msg") == "tokens re-read" for r in s.log_records()),
                     h.RPC_TIMEOUT, "the tokens to be re-read")
        self.start(s, ADMIN, "echo", "after")
        h.wait_until(lambda: ["after"] in seen[ADMIN], h.RPC_TIMEOUT,
                     "the admin's watch-all to hear the second echo")
        s.stub.Destroy(pb.DestroyRequest(id=mine.id, wait=True), timeout=h.RPC_TIMEOUT,
                       metadata=bearer(ADMIN))
        self.assertNotIn(["after"], seen[APP], "a revoked token's watch-all still reads")
        with self.assertRaises(grpc.RpcError) as cm:
            for ev in single:
                self.assertNotEqual(h.state(ev.process), "CANCELED",
                                    "a revoked token's Watch still reads")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        for st in streams.values():
            st.cancel()

    def test_spawnctl_token(self):
        if SPAWNCTL is None:
            self.skipTest("spawnctl is not in this test's runfiles")
        s = self.server(self.config())

        def spawnctl(*args, env=None):
            e = dict(os.environ)
            e.pop("SPAWND_TOKEN", None)
            e.update(env or {})
            return subprocess.run([SPAWNCTL, "--addr", s.address] + list(args), capture_output=True,
                                  text=True, timeout=h.RPC_TIMEOUT * 2, stdin=subprocess.DEVNULL, env=e)

        r = spawnctl("start", "--watch", "echo", "hi")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = spawnctl("--token", APP, "start", "--watch", "echo", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = spawnctl("start", "--watch", "echo", "hi", env={"SPAWND_TOKEN": APP})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = spawnctl("--token", APP, "start", "crash")
        self.assertIn("PERMISSION_DENIED", r.stderr)


if __name__ == "__main__":
    h.main()
