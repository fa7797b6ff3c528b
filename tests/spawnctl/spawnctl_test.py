"""spawnctl end to end: the real spawnd, driven by the real spawnctl.

One spawnd serves the default config on 127.0.0.1:0 for the whole module; the
port comes from its "serving" log line. Every subcommand runs as a subprocess
with a deadline, and its stdout, stderr and exit status are checked. At the
end spawnd gets SIGTERM and must exit 0.

Exit statuses under test (spawnctl --help): 0 ok / succeeded, 1 failed,
2 canceled, 3 usage error, 4 RPC or transport error. Under the sanitizer build
a leak turns spawnctl's status into 66, which these checks catch.

Run with /usr/bin/python3 (run_py.sh); no sleeps: every wait polls a condition
until a deadline.
"""

import base64
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SANITIZED = bool(os.environ.get("ASAN_OPTIONS")) or os.environ.get(
    "SPAWND_SANITIZED", "") not in ("", "0")
SLOW = 3.0 if SANITIZED else 1.0

#: Deadline of one spawnctl run that should answer at once.
RUN_TIMEOUT = 15.0 * SLOW
#: Deadline for spawnd's "serving" line, and for its exit after SIGTERM.
START_TIMEOUT = 15.0 * SLOW
STOP_TIMEOUT = 20.0 * SLOW
#: A refused connection must fail well within this (it is not a hang).
REFUSED_TIMEOUT = 5.0 * SLOW

EXIT_OK, EXIT_FAILED, EXIT_CANCELED, EXIT_USAGE, EXIT_RPC = 0, 1, 2, 3, 4

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def runfile(rel):
    roots = []
    if os.environ.get("TEST_SRCDIR"):
        roots.append(os.path.join(os.environ["TEST_SRCDIR"],
                                  os.environ.get("TEST_WORKSPACE", "spawnd")))
    roots.append(os.path.join(REPO, "bazel-bin"))
    for root in roots:
        p = os.path.join(root, rel)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s not found under %s" % (rel, roots))


SPAWND = runfile("service/front/spawnd")
SPAWNCTL = runfile("tools/spawnctl/spawnctl")


class LineReader:
    """Reads lines from a pipe with a deadline (select + os.read)."""

    def __init__(self, fileobj):
        self.fd = fileobj.fileno()
        self.buf = b""
        self.eof = False
        self.seen = []

    def readline(self, deadline):
        """The next line (bytes, without '\\n'), or None at EOF or deadline."""
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                if self.buf:
                    line, self.buf = self.buf, b""
                    self.seen.append(line)
                    return line
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        self.seen.append(line)
        return line

    def drain(self, deadline):
        while self.readline(deadline) is not None:
            pass
        return b"\n".join(self.seen)


class Server:
    def __init__(self, listen="127.0.0.1:0"):
        env = dict(os.environ, SPAWND_LISTEN=listen)
        self.proc = subprocess.Popen([SPAWND], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        self.log = LineReader(self.proc.stderr)
        self.addr = None
        deadline = time.monotonic() + START_TIMEOUT
        while self.addr is None:
            line = self.log.readline(deadline)
            if line is None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("spawnd did not log 'serving' within %.0fs:\n%s"
                                     % (START_TIMEOUT, b"\n".join(self.log.seen).decode(
                                         "utf-8", "replace")))
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "serving":
                self.addr = rec["address"]

    def stop(self):
        """SIGTERM; returns spawnd's exit status (it must come within the deadline)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("spawnd did not exit within %.0fs of SIGTERM" % STOP_TIMEOUT)
        self.log.drain(time.monotonic() + 1.0)
        self.proc.stderr.close()
        return rc


SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server()


def tearDownModule():
    rc = SERVER.stop()
    if rc != 0:
        raise AssertionError("spawnd exited %d after SIGTERM; its log:\n%s" % (
            rc, b"\n".join(SERVER.log.seen).decode("utf-8", "replace")[-4000:]))


def ctl(*args, addr=None, stdin=None, timeout=RUN_TIMEOUT, env_addr=False):
    """Runs spawnctl; returns (status, stdout bytes, stderr text)."""
    argv = [SPAWNCTL]
    env = dict(os.environ)
    env.pop("SPAWND_ADDR", None)
    if env_addr:
        env["SPAWND_ADDR"] = addr or SERVER.addr
    else:
        argv += ["--addr", addr or SERVER.addr]
    argv += list(args)
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def fields(out):
    """Human `key: value` lines -> dict."""
    d = {}
    for line in out.decode().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\[\]]+):\s+(.*)$", line)
        if m:
            d[m.group(1)] = m.group(2)
    return d


def json_lines(out):
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


class StartWatchTest(unittest.TestCase):
    def test_echo_args(self):
        rc, out, err = ctl("start", "--watch", "echo", "--", "a", "b")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out, b"a b")
        self.assertIn("SUCCEEDED", err)  # the state changes go to stderr

    def test_default_address_from_environment(self):
        rc, out, err = ctl("start", "--watch", "echo", "x", env_addr=True)
        self.assertEqual((rc, out), (EXIT_OK, b"x"), err)

    def test_fail_exits_1_with_the_error(self):
        rc, out, err = ctl("start", "--watch", "fail", "--", "ValueError", "boom")
        self.assertEqual(rc, EXIT_FAILED, err)
        self.assertIn("ValueError", err)
        self.assertIn("boom", err)
        self.assertRegex(err, r"spawnctl: process \S+ failed")

    def test_exec_exit_code(self):
        rc, _, err = ctl("start", "--watch", "exit3")
        self.assertEqual(rc, EXIT_FAILED, err)
        self.assertIn("exit code 3", err)

    def test_input_file_bytes(self):
        data = b"line one\n\x00\xff binary \x01\nlast"
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TEST_TMPDIR")) as f:
            f.write(data)
            f.flush()
            rc, out, err = ctl("start", "--watch", "--input", f.name, "echo")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out, data)

    def test_input_stdin(self):
        rc, out, err = ctl("start", "--watch", "--input", "-", "echo", stdin=b"from stdin\n")
        self.assertEqual((rc, out), (EXIT_OK, b"from stdin\n"), err)

    def test_missing_input_file_is_usage_error(self):
        rc, _, err = ctl("start", "--input", "/nonexistent/spawnctl-input", "echo")
        self.assertEqual(rc, EXIT_USAGE, err)
        self.assertIn("--input", err)

    def test_json_events(self):
        rc, out, err = ctl("--json", "start", "--watch", "echo", "--", "j", "k")
        self.assertEqual(rc, EXIT_OK, err)
        events = json_lines(out)
        self.assertGreaterEqual(len(events), 3)
        # One Run call: every event from PENDING (sequence 1), no SNAPSHOT.
        self.assertEqual(events[0]["type"], "TYPE_STATE_CHANGED")
        self.assertEqual(events[0]["process"]["state"], "STATE_PENDING")
        self.assertEqual(int(events[0]["sequence"]), 1)
        last = events[-1]["process"]
        self.assertEqual(last["state"], "STATE_SUCCEEDED")
        self.assertEqual(base64.b64decode(last["result"], validate=True), b"j k")
        self.assertEqual(last["args"], ["j", "k"])
        seqs = [int(e["sequence"]) for e in events]
        self.assertEqual(seqs, sorted(seqs))

    def test_destroyed_while_watched_exits_2(self):
        w = subprocess.Popen([SPAWNCTL, "--addr", SERVER.addr, "start", "--watch", "sleep"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            # The first state line on stderr names the process: "ID SEQ TYPE STATE ...".
            reader = LineReader(w.stderr)
            line = reader.readline(time.monotonic() + RUN_TIMEOUT)
            self.assertIsNotNone(line, "no event from the watching spawnctl")
            pid = line.decode().split()[0]
            rc, out, err = ctl("destroy", pid)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(fields(out)["destroyed"], "true")
            try:
                wrc = w.wait(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.fail("the watching spawnctl did not end after Destroy")
            werr = reader.drain(time.monotonic() + RUN_TIMEOUT).decode()
            self.assertEqual(wrc, EXIT_CANCELED, werr)
            self.assertIn("canceled", werr)
            self.assertEqual(w.stdout.read(), b"")
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stdout.close()
            w.stderr.close()


class ProcessTest(unittest.TestCase):
    def test_start_prints_id_first(self):
        rc, out, err = ctl("start", "noop")
        self.assertEqual(rc, EXIT_OK, err)
        first = out.decode().splitlines()[0]
        self.assertRegex(first, r"^id:\s+\S+$")
        self.assertIn(fields(out)["state"], ("PENDING", "RUNNING", "SUCCEEDED"))

    def test_destroy_wait_cancels(self):
        rc, out, err = ctl("start", "sleep")
        self.assertEqual(rc, EXIT_OK, err)
        pid = fields(out)["id"]
        rc, out, err = ctl("destroy", "--wait", "--grace", "2s", pid)
        self.assertEqual(rc, EXIT_OK, err)
        f = fields(out)
        self.assertEqual(f["id"], pid)
        self.assertEqual(f["state"], "CANCELED")
        self.assertEqual(f["canceled"], "true")
        # The process stays canceled.
        rc, out, err = ctl("get", pid)
        self.assertEqual((rc, fields(out)["state"]), (EXIT_OK, "CANCELED"), err)

    def test_get_human_and_json(self):
        rc, out, err = ctl("--json", "start", "--watch", "echo", "--", "hello", "get")
        self.assertEqual(rc, EXIT_OK, err)
        pid = json_lines(out)[-1]["processId"]
        rc, out, err = ctl("get", pid)
        self.assertEqual(rc, EXIT_OK, err)
        f = fields(out)
        self.assertEqual(f["id"], pid)
        self.assertEqual(f["target"], "echo")
        self.assertEqual(f["state"], "SUCCEEDED")
        self.assertEqual(f["result"], '"hello get"')
        self.assertEqual(f["args"], "hello get")
        self.assertRegex(f["ended_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        rc, out, err = ctl("--json", "get", pid)
        self.assertEqual(rc, EXIT_OK, err)
        objs = json_lines(out)
        self.assertEqual(len(objs), 1)
        p = objs[0]
        self.assertEqual(p["id"], pid)
        self.assertEqual(p["state"], "STATE_SUCCEEDED")
        self.assertEqual(base64.b64decode(p["result"], validate=True), b"hello get")
        self.assertTrue(p["ran"])
        self.assertEqual(p["startMethod"], "START_METHOD_FORK")
        self.assertRegex(p["usage"]["maxRssBytes"], r"^\d+$")  # 64-bit: a string
        self.assertRegex(p["usage"]["userCpu"], r"^\d+(\.\d+)?s$")

    def test_get_unknown_id(self):
        rc, out, err = ctl("get", "no-such-process")
        self.assertEqual(rc, EXIT_RPC, err)
        self.assertTrue(err.startswith("spawnctl: NOT_FOUND: "), err)
        self.assertEqual(out, b"")

    def test_watch_finished_process(self):
        rc, out, err = ctl("--json", "start", "--watch", "fail", "--", "KeyError", "k")
        self.assertEqual(rc, EXIT_FAILED, err)
        pid = json_lines(out)[-1]["processId"]
        rc, out, err = ctl("watch", pid)
        self.assertEqual(rc, EXIT_FAILED, err)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 1, out)
        self.assertRegex(lines[0], r"^%s \d+ SNAPSHOT FAILED .*KeyError" % re.escape(pid))

    def test_watch_output_writes_chunks_raw(self):
        # Resuming after PENDING replays RUNNING, every (retained) chunk and
        # the end: the chunks raw on their streams, the event lines on stderr.
        rc, out, err = ctl("--json", "start", "--watch", "spew", "--", "stdout=100", "stderr=50")
        self.assertEqual(rc, EXIT_OK, err)
        pid = json_lines(out)[-1]["processId"]
        rc, out, err = ctl("watch", "--output", "--after", "1", pid)
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out, spew_bytes(100), "stdout is exactly the process's stdout")
        self.assertIn(spew_bytes(50).decode(), err, "the process's stderr, raw, on stderr")
        self.assertRegex(err, r"(?m)^%s 2 STATE_CHANGED RUNNING" % re.escape(pid))
        self.assertRegex(err, r"(?m)^%s \d+ STATE_CHANGED SUCCEEDED" % re.escape(pid))
        self.assertNotIn("OUTPUT", err, "chunks are not shown as event lines")
        # From a SNAPSHOT of the ended process: its tails, raw.
        rc, out, err = ctl("watch", "--output", pid)
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out, spew_bytes(100))
        self.assertIn(spew_bytes(50).decode(), err)
        self.assertRegex(err, r"(?m)^%s \d+ SNAPSHOT SUCCEEDED" % re.escape(pid))

    def test_watch_after_resumes(self):
        rc, out, err = ctl("--json", "start", "--watch", "fail", "--", "KeyError", "k")
        self.assertEqual(rc, EXIT_FAILED, err)
        pid = json_lines(out)[-1]["processId"]
        last = int(json_lines(out)[-1]["sequence"])
        self.assertEqual(last, 3)
        rc, out, err = ctl("watch", "--after", "1", pid)
        self.assertEqual(rc, EXIT_FAILED, err)
        lines = out.decode().splitlines()
        self.assertEqual([l.split()[1:4] for l in lines],
                         [["2", "STATE_CHANGED", "RUNNING"], ["3", "STATE_CHANGED", "FAILED"]], out)
        # At the last sequence: no event; the exit status still tells the end.
        rc, out, err = ctl("watch", "--after", str(last), pid)
        self.assertEqual((rc, out), (EXIT_FAILED, b""), err)
        rc, out, err = ctl("--json", "start", "--watch", "noop")
        pid = json_lines(out)[-1]["processId"]
        last = int(json_lines(out)[-1]["sequence"])
        rc, out, err = ctl("watch", "--after", str(last), pid)
        self.assertEqual((rc, out), (EXIT_OK, b""), err)
        # Past the last: a resume point never sent (SPEC §12 "Resume points").
        rc, out, err = ctl("watch", "--after", str(last + 1), pid)
        self.assertEqual((rc, out), (EXIT_RPC, b""), err)
        self.assertRegex(err, r"^spawnctl: INVALID_ARGUMENT: after_sequence")
        rc, out, err = ctl("watch", "--after", "99", pid)
        self.assertEqual((rc, out), (EXIT_RPC, b""), err)
        self.assertRegex(err, r"^spawnctl: INVALID_ARGUMENT: after_sequence")

    def test_request_id_returns_the_same_process(self):
        rid = "r-" + os.urandom(8).hex()
        rc, out, err = ctl("start", "--label", "team=a", "--request-id", rid, "echo", "--", "same")
        self.assertEqual(rc, EXIT_OK, err)
        first = fields(out)["id"]
        rc, out, err = ctl("start", "--label", "team=a", "--request-id", rid, "echo", "--", "same")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(fields(out)["id"], first, "the retry printed the original process")
        rc, out, err = ctl("start", "--label", "team=a", "--request-id", rid, "echo", "--", "other")
        self.assertEqual(rc, EXIT_RPC, err)
        self.assertRegex(err, r"^spawnctl: ALREADY_EXISTS: .*request_id")
        self.assertEqual(out, b"")
        # With --watch, the retry follows the original to its end.
        rc, out, err = ctl("start", "--watch", "--label", "team=a", "--request-id", rid,
                           "echo", "--", "same")
        self.assertEqual((rc, out), (EXIT_OK, b"same"), err)
        self.assertIn(first, err)

    def test_labels_are_sent(self):
        rc, out, err = ctl("--json", "start", "--label", "team=a", "--label", "x=y=z", "noop")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(json_lines(out)[0]["process"]["labels"], {"team": "a", "x": "y=z"})


def spew_bytes(n):
    """What the `spew` sample writes for N bytes: 'x's with a newline every 64."""
    return bytes(b"\n"[0] if i % 64 == 0 else b"x"[0] for i in range(n))


class OutputTest(unittest.TestCase):
    def test_start_watch_writes_output_raw_then_result(self):
        rc, out, err = ctl("start", "--watch", "spew", "--", "stdout=100", "stderr=50", "result=5")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out, spew_bytes(100) + spew_bytes(5), "stdout: the output, then the result")
        self.assertIn(spew_bytes(50).decode(), err)
        self.assertIn("SUCCEEDED", err)
        self.assertNotIn("OUTPUT", err)

    def test_start_watch_large_output_is_complete(self):
        n = 3 * 1024 * 1024
        rc, out, err = ctl("start", "--watch", "spew", "--", "stdout=%d" % n,
                           timeout=60 * SLOW)
        self.assertEqual(rc, EXIT_OK, err[-2000:])
        self.assertTrue(out)
        if "no longer kept" in err:
            # The child wrote more than spawnd keeps for a resume before the
            # watch began: spawnctl says so (and shows the kept tail).
            self.assertRegex(err, r"spawnctl: \S+: earlier events are no longer kept")
            return
        # A fast reader gets every byte, else it is told how many it lost.
        found = re.findall(r"(\d+) bytes of output dropped", err)
        dropped = int(found[-1]) if found else 0
        self.assertEqual(len(out) + dropped, n, err[-2000:])
        if not dropped:
            self.assertEqual(out, (spew_bytes(65536) * (n // 65536)))

    def test_start_watch_failure_after_stderr(self):
        # The error report starts on a line of its own after raw stderr bytes.
        rc, out, err = ctl("start", "--watch", "exit3")
        self.assertEqual(rc, EXIT_FAILED, err)
        self.assertRegex(err, r"(?m)^spawnctl: process \S+ failed \(EXIT_CODE, exit code 3\)")


class WatchAllTest(unittest.TestCase):
    def test_watch_all_with_labels_until_interrupted(self):
        tag = os.urandom(6).hex()
        rc, out, err = ctl("start", "--label", "run=" + tag, "sleep")
        self.assertEqual(rc, EXIT_OK, err)
        live = fields(out)["id"]
        w = subprocess.Popen([SPAWNCTL, "--addr", SERVER.addr, "watch", "--all",
                              "--label", "run=" + tag], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader = LineReader(w.stdout)
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            first = reader.readline(deadline)
            self.assertIsNotNone(first, "no SNAPSHOT line from watch --all")
            self.assertRegex(first.decode(), r"^%s 2 SNAPSHOT RUNNING" % live)
            rc, out, err = ctl("start", "--label", "run=other" + tag, "noop")
            self.assertEqual(rc, EXIT_OK, err)
            other = fields(out)["id"]
            rc, out, err = ctl("start", "--watch", "--label", "run=" + tag, "noop")
            self.assertEqual(rc, EXIT_OK, err)
            new = err.split()[0]
            lines = []
            while True:
                line = reader.readline(deadline)
                self.assertIsNotNone(line, "watch --all stopped or is silent: %s" % lines)
                lines.append(line.decode())
                if line.decode().startswith(new) and "SUCCEEDED" in line.decode():
                    break
            mine = [l.split()[1:4] for l in lines if l.startswith(new)]
            self.assertEqual(mine, [["1", "STATE_CHANGED", "PENDING"],
                                    ["2", "STATE_CHANGED", "RUNNING"],
                                    ["3", "STATE_CHANGED", "SUCCEEDED"]], lines)
            self.assertFalse([l for l in lines if l.startswith(other)], lines)
            self.assertIsNone(w.poll(), "watch --all never ends by itself")
            w.send_signal(signal.SIGINT)
            try:
                wrc = w.wait(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.fail("watch --all did not end after SIGINT")
            self.assertEqual(wrc, EXIT_OK, w.stderr.read().decode("utf-8", "replace"))
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stdout.close()
            w.stderr.close()
            ctl("destroy", live)

    def test_watch_all_timeout_ends_ok(self):
        rc, out, err = ctl("--timeout", "1s", "watch", "--all", "--label", "none=" + os.urandom(4).hex())
        self.assertEqual((rc, out), (EXIT_OK, b""), err)


class ListTest(unittest.TestCase):
    def test_targets_table(self):
        rc, out, err = ctl("targets")
        self.assertEqual(rc, EXIT_OK, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0].split(),
                         ["NAME", "KIND", "METHOD", "RUNNING", "PENDING", "IDLE", "HEALTH",
                          "DESCRIPTION"])
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertIn("echo", rows)
        self.assertIn("exit3", rows)
        self.assertEqual(rows["echo"][1], "FUNCTION")
        self.assertEqual(rows["exit3"][1], "EXEC")
        self.assertEqual(rows["echo"][5], "-")  # no prestart: no pre-started children
        self.assertEqual(rows["echo"][6], "SERVING")
        # Columns are aligned: every DESCRIPTION starts at the same offset.
        col = lines[0].index("DESCRIPTION")
        self.assertTrue(lines[1][col - 1] == " " and lines[1][col] != " ", lines[1])

    def test_targets_json(self):
        rc, out, err = ctl("--json", "targets")
        self.assertEqual(rc, EXIT_OK, err)
        objs = json_lines(out)
        self.assertEqual(len(objs), 1)
        names = {t["name"]: t for t in objs[0]["targets"]}
        self.assertEqual(names["exit3"]["kind"], "KIND_EXEC")
        self.assertEqual(names["exit3"]["exec"], ["/bin/sh", "-c", "exit 3"])
        self.assertEqual(names["echo"]["function"], "builtin:echo")

    def test_ls(self):
        rc, out, err = ctl("ls", "--state", "running", "--label", "a=b", "--page-size", "5")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out.decode().splitlines()[0].split(), ["ID", "TARGET", "STATE", "PID", "CREATED"])

    def test_ls_lists_and_follows_page_token(self):
        tag = os.urandom(6).hex()
        ids = []
        for _ in range(3):
            rc, out, err = ctl("start", "--watch", "--label", "ls=" + tag, "echo")
            self.assertEqual(rc, EXIT_OK, err)
            ids.append(err.split()[0])
        rc, out, err = ctl("ls", "--label", "ls=" + tag, "--page-size", "2")
        self.assertEqual(rc, EXIT_OK, err)
        rows = [l.split() for l in out.decode().splitlines()[1:]]
        self.assertEqual([r[0] for r in rows], ids[:2], "oldest first, one page")
        self.assertEqual([r[1:3] for r in rows], [["echo", "SUCCEEDED"]] * 2)
        m = re.search(r"next page: spawnctl ls --page-token (\S+)", err)
        self.assertIsNotNone(m, err)
        rc, out, err = ctl("ls", "--label", "ls=" + tag, "--page-size", "2", "--page-token", m.group(1))
        self.assertEqual(rc, EXIT_OK, err)
        rows = [l.split() for l in out.decode().splitlines()[1:]]
        self.assertEqual([r[0] for r in rows], ids[2:])
        self.assertNotIn("next page", err)
        rc, out, err = ctl("--json", "ls", "--label", "ls=" + tag, "--state", "succeeded",
                           "--target", "echo")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual([p["id"] for p in json_lines(out)[0]["processes"]], ids)
        rc, out, err = ctl("ls", "--page-token", "not-a-token")
        self.assertEqual(rc, EXIT_RPC, err)
        self.assertRegex(err, r"^spawnctl: INVALID_ARGUMENT: page_token")

    def test_health(self):
        rc, out, err = ctl("health")
        if rc == EXIT_RPC:  # not served yet
            self.assertRegex(err, r"^spawnctl: UNIMPLEMENTED: ")
        else:
            self.assertEqual((rc, out), (EXIT_OK, b"status: SERVING\n"), err)


class UsageTest(unittest.TestCase):
    def assertUsage(self, args, needle):
        rc, out, err = ctl(*args)
        self.assertEqual(rc, EXIT_USAGE, "%s: %s" % (args, err))
        self.assertIn(needle, err)
        self.assertEqual(out, b"")

    def test_usage_errors(self):
        self.assertUsage(["frobnicate"], "unknown subcommand 'frobnicate'")
        self.assertUsage(["start"], "missing TARGET")
        self.assertUsage(["start", "--watch"], "missing TARGET")
        self.assertUsage(["start", "--grace", "5x", "sleep"], "--grace")
        self.assertUsage(["start", "--timeout-process", "-1s", "sleep"], "--timeout-process")
        self.assertUsage(["--timeout", "soon", "targets"], "--timeout")
        self.assertUsage(["destroy", "--grace", "1.5", "x"], "--grace")
        self.assertUsage(["start", "--label", "novalue", "echo"], "--label")
        self.assertUsage(["start", "--bogus", "echo"], "unknown option '--bogus'")
        self.assertUsage(["get"], "missing ID")
        self.assertUsage(["get", "a", "b"], "unexpected argument 'b'")
        self.assertUsage(["ls", "--state", "sleepy"], "--state")
        self.assertUsage(["ls", "--page-size", "-3"], "--page-size")
        self.assertUsage([], "missing SUBCOMMAND")
        self.assertUsage(["start", "--input"], "--input needs a value")
        self.assertUsage(["watch"], "missing ID")
        self.assertUsage(["watch", "--all", "some-id"], "--all takes no ID")
        self.assertUsage(["watch", "--all", "--after", "3"], "--after")
        self.assertUsage(["watch", "--after", "x", "some-id"], "--after")
        self.assertUsage(["watch", "--after", "-1", "some-id"], "--after")
        self.assertUsage(["watch", "--label", "a=b", "some-id"], "--label")
        self.assertUsage(["watch", "--all", "--label", "novalue"], "--label")

    def test_help(self):
        rc, out, err = ctl("--help")
        self.assertEqual(rc, EXIT_OK, err)
        for word in ("start", "watch", "destroy", "get", "ls", "targets", "health"):
            self.assertIn(word, out.decode())
        self.assertIn("4  RPC or transport error", out.decode())
        rc, out, err = ctl("start", "--help")
        self.assertEqual(rc, EXIT_OK, err)
        self.assertIn("Usage: spawnctl [GLOBAL OPTIONS] start", out.decode())

    def test_target_args_keep_option_words(self):
        # After TARGET every word is an argument, "--flag" included.
        rc, out, err = ctl("start", "--watch", "echo", "--", "--watch", "-x")
        self.assertEqual((rc, out), (EXIT_OK, b"--watch -x"), err)


class TransportTest(unittest.TestCase):
    @staticmethod
    def dead_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens on it now
        return port

    def test_refused_connection_exits_4_fast(self):
        addr = "127.0.0.1:%d" % self.dead_port()
        for args in (["--timeout", "2s", "targets"], ["watch", "some-id"],
                     ["start", "--watch", "echo"]):
            # It exits on its own (ctl's subprocess timeout raises otherwise).
            rc, out, err = ctl(*args, addr=addr, timeout=REFUSED_TIMEOUT)
            self.assertEqual(rc, EXIT_RPC, "%s: %s" % (args, err))
            self.assertRegex(err, r"^spawnctl: (UNAVAILABLE|DEADLINE_EXCEEDED): ")

    def test_unix_socket_address(self):
        # A short path: sun_path holds 107 bytes, Bazel's TEST_TMPDIR is longer.
        d = tempfile.mkdtemp(prefix="spawnctl-", dir="/tmp")
        path = os.path.join(d, "s.sock")
        try:
            rc, _, err = ctl("--timeout", "2s", "targets", addr="unix:" + path,
                             timeout=REFUSED_TIMEOUT)
            self.assertEqual(rc, EXIT_RPC, err)
            self.assertRegex(err, r"^spawnctl: (UNAVAILABLE|DEADLINE_EXCEEDED): ")
            server = Server(listen="unix:" + path)
            try:
                rc, out, err = ctl("start", "--watch", "echo", "unix", addr="unix:" + path)
                self.assertEqual((rc, out), (EXIT_OK, b"unix"), err)
            finally:
                self.assertEqual(server.stop(), 0)
        finally:
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(d)

if __name__ == "__main__":
    unittest.main(verbosity=2)
