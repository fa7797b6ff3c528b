"""End-to-end harness for spawnd: a real server binary, a real gRPC client.

Drives `//service/front:spawnd` with Debian's python3-grpcio (run it with
/usr/bin/python3). Python messages are generated at test time from the project's
proto with the system `protoc --python_out` into a temporary directory and loaded
by file path: a generated package tree on sys.path could shadow real packages
(notes/grpc-c-core.md §12.8). Stubs are written by hand with
`channel.unary_unary` / `channel.unary_stream`.

Every wait has a deadline. Nothing sleeps "long enough": waits poll a condition
(a log line, an RPC, /proc) until it holds or the deadline passes.
"""

import atexit
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

# gRPC's fork handlers do not mix with subprocess.Popen from a process that has
# channels open; the tests never fork a gRPC client.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402  (must come after the environment above)
from google.protobuf import text_format  # noqa: E402

# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

#: The sanitizer build is slower and leak checking changes exit statuses;
#: absolute timing windows are asserted only without it (SPEC §11).
#: SPAWND_SANITIZED=1 is the contract; ASAN_OPTIONS (set by `--config=asan`'s
#: --test_env) is taken as a hint too, so the asan build works without it.
SANITIZED = (os.environ.get("SPAWND_SANITIZED", "") not in ("", "0")
             or "ASAN_OPTIONS" in os.environ)
SLOW = 3.0 if SANITIZED else 1.0

#: Deadline of one ordinary RPC, in seconds.
RPC_TIMEOUT = 10.0 * SLOW
#: Deadline for spawnd to log "serving".
START_TIMEOUT = 15.0 * SLOW
#: Deadline for spawnd to exit after SIGTERM.
STOP_TIMEOUT = 20.0 * SLOW
#: Deadline for killed processes to disappear from /proc.
VANISH_TIMEOUT = 5.0 * SLOW

SERVICE = "spawnd.v1.ProcessService"
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED")

# Temporary files go to Bazel's per-test directory when there is one.
if os.environ.get("TEST_TMPDIR"):
    tempfile.tempdir = os.environ["TEST_TMPDIR"]

_REPO_FROM_HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def runfiles_root():
    """The workspace root in the runfiles tree (or the source tree, run by hand)."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        return os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "spawnd"))
    return _REPO_FROM_HERE


def _find(relpath, env_override=None):
    if env_override and os.environ.get(env_override):
        return os.environ[env_override]
    for root in (runfiles_root(), os.path.join(_REPO_FROM_HERE, "bazel-bin")):
        p = os.path.join(root, relpath)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s not found in runfiles (%s)" % (relpath, runfiles_root()))


def spawnd_binary():
    return _find("service/front/spawnd", "SPAWND_BIN")


def samples_library():
    """Absolute path of libspawnd_samples.so (for `library:` targets)."""
    return os.path.abspath(_find("service/target/libspawnd_samples.so", "SPAWND_SAMPLES_SO"))


def proto_root():
    return os.path.join(runfiles_root(), "proto")


def default_config_text():
    with open(os.path.join(runfiles_root(), "config", "default.yaml")) as f:
        return f.read()


def default_config_on_free_port():
    """The default config with `listen` replaced by 127.0.0.1:0."""
    text, n = re.subn(r"(?m)^listen:.*$", 'listen: ["127.0.0.1:0"]', default_config_text())
    if n != 1:
        raise AssertionError("default.yaml: expected exactly one top-level `listen:` line")
    return text


def minimal_config(targets, extra=""):
    """A small config serving TARGETS ({name: flow-YAML text}) on a free port."""
    lines = [
        'listen: ["127.0.0.1:0"]',
        "log: {format: json, level: info}",
    ]
    if extra:
        lines.append(extra.rstrip("\n"))
    lines.append("targets:")
    for name, spec in targets.items():
        lines.append("  %s: %s" % (json.dumps(name), spec))
    return "\n".join(lines) + "\n"


def yaml_str(s):
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


# ---------------------------------------------------------------------------
# Generated messages and stubs
# ---------------------------------------------------------------------------

_PB = None
_PB_LOCK = threading.Lock()
_PROTO_FILES = [
    "spawnd/v1/spawnd.proto",
    "google/protobuf/duration.proto",
    "google/protobuf/timestamp.proto",
]


def _load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pb():
    """The generated spawnd.v1 module (spawnd_pb2), generated once per process."""
    global _PB
    with _PB_LOCK:
        if _PB is not None:
            return _PB
        out = tempfile.mkdtemp(prefix="spawnd-e2e-pb-")
        atexit.register(shutil.rmtree, out, True)
        protoc = shutil.which("protoc") or "/usr/bin/protoc"
        cmd = [protoc, "-I", proto_root(), "--python_out=" + out] + _PROTO_FILES
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr))
        # spawnd_pb2 imports `google.protobuf.duration_pb2` etc. The installed
        # protobuf package provides them (same descriptors: both come from
        # protobuf 3.21.12); the generated copies are used only if it does not.
        for wkt in ("duration", "timestamp"):
            name = "google.protobuf.%s_pb2" % wkt
            try:
                importlib.import_module(name)
            except ImportError:
                _load_module(name, os.path.join(out, "google", "protobuf", wkt + "_pb2.py"))
        _PB = _load_module("spawnd_e2e_spawnd_pb2", os.path.join(out, "spawnd", "v1", "spawnd_pb2.py"))
        return _PB


class ProcessStub:
    """Client stub for spawnd.v1.ProcessService."""

    def __init__(self, channel):
        m = pb()

        def unary(name, req, resp):
            return channel.unary_unary(
                "/%s/%s" % (SERVICE, name),
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )

        self.StartProcess = unary("StartProcess", m.StartProcessRequest, m.StartProcessResponse)
        self.Destroy = unary("Destroy", m.DestroyRequest, m.DestroyResponse)
        self.GetProcess = unary("GetProcess", m.GetProcessRequest, m.Process)
        self.ListProcesses = unary("ListProcesses", m.ListProcessesRequest, m.ListProcessesResponse)
        self.ListTargets = unary("ListTargets", m.ListTargetsRequest, m.ListTargetsResponse)
        self.Watch = channel.unary_stream(
            "/%s/Watch" % SERVICE,
            request_serializer=m.WatchRequest.SerializeToString,
            response_deserializer=m.ProcessEvent.FromString,
        )
        self.Run = channel.unary_stream(
            "/%s/Run" % SERVICE,
            request_serializer=m.RunRequest.SerializeToString,
            response_deserializer=m.ProcessEvent.FromString,
        )


# ---------------------------------------------------------------------------
# Enums (compared by suffix: values carry their type as a prefix)
# ---------------------------------------------------------------------------


def _suffix(enum_type, value, prefix):
    name = enum_type.Name(value) if value in enum_type.values() else str(value)
    return name[len(prefix):] if name.startswith(prefix) else name


def state(p):
    return _suffix(pb().State, p.state, "STATE_")


def kind(p):
    return _suffix(pb().ProcessError.Kind, p.error.kind, "KIND_")


def start_method(v):
    return _suffix(pb().StartMethod, v, "START_METHOD_")


def event_type(ev):
    return _suffix(pb().ProcessEvent.Type, ev.type, "TYPE_")


def target_kind(t):
    return _suffix(pb().Target.Kind, t.kind, "KIND_")


def is_terminal(p):
    return state(p) in TERMINAL_STATES


def duration(seconds=0.0, nanos=None):
    """A google.protobuf.Duration of SECONDS (float), or raw seconds/nanos."""
    from google.protobuf import duration_pb2

    if nanos is not None:
        return duration_pb2.Duration(seconds=int(seconds), nanos=int(nanos))
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def show(msg, limit=3000):
    """One-line text of a message, for assertion messages."""
    s = text_format.MessageToString(msg, as_one_line=True)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def show_events(events):
    return "\n".join("  #%d %s %s" % (i, event_type(e), show(e, 600)) for i, e in enumerate(events))


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------


class ProcInfo:
    __slots__ = ("pid", "comm", "state", "ppid", "pgrp", "session")

    def __init__(self, pid, comm, st, ppid, pgrp, session):
        self.pid, self.comm, self.state, self.ppid, self.pgrp, self.session = pid, comm, st, ppid, pgrp, session

    def __repr__(self):
        return "pid=%d ppid=%d pgrp=%d sid=%d state=%s comm=%s" % (
            self.pid, self.ppid, self.pgrp, self.session, self.state, self.comm)


def proc_info(pid):
    """ProcInfo of PID, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    comm = data[lp + 1:rp]
    fields = data[rp + 2:].split()
    return ProcInfo(pid, comm, fields[0], int(fields[1]), int(fields[2]), int(fields[3]))


def live_processes():
    """{pid: ProcInfo} of every live, non-zombie process in /proc except this test.

    Bazel runs the test in its own PID namespace, so this sees the test's
    processes (and Bazel's test runner), including descendants reparented away
    from spawnd. Threads are not listed by readdir(/proc), so the test's own
    threads never appear.
    """
    me = os.getpid()
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        info = proc_info(pid)
        if info is None or info.state in ("Z", "X", "x"):
            continue
        out[pid] = info
    return out


def is_alive(pid):
    info = proc_info(pid)
    return info is not None and info.state not in ("Z", "X", "x")


def descendants_alive(pids):
    """The subset of PIDS that are live, non-zombie processes."""
    return [p for p in pids if is_alive(p)]


def wait_gone(pids, timeout=VANISH_TIMEOUT, what="processes to end"):
    """Waits until none of PIDS is a live, non-zombie process; fails listing them."""
    end = time.monotonic() + timeout
    while True:
        alive = descendants_alive(pids)
        if not alive:
            return
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s; still alive:\n  %s" % (
                timeout, what, "\n  ".join(repr(proc_info(p)) for p in alive)))
        time.sleep(0.02)


def descendants(root, procs=None):
    """Live descendants of ROOT (by parent links at the moment of the scan)."""
    procs = live_processes() if procs is None else procs
    children = {}
    for info in procs.values():
        children.setdefault(info.ppid, []).append(info.pid)
    out, stack = [], [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def environ_has(pid, needle):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return needle in f.read()
    except OSError:
        return False


def signal_ignored(pid, signo):
    """True when PID ignores SIGNO (SigIgn of /proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signo - 1)))
    except OSError:
        pass
    return False


def wait_until(pred, timeout, what, interval=0.01):
    """Polls PRED until truthy (returns its value) or fails after TIMEOUT s."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class Server:
    """A spawnd process on a free loopback port, as a context manager.

    `config`: YAML text; None = the default config with listen 127.0.0.1:0.
    On exit it sends SIGTERM, waits (deadline, then SIGKILL and fail), checks the
    exit status (`expect_status`: an int, or "nonzero"; None = don't check) and
    that nothing spawnd started outlives it.
    """

    def __init__(self, config=None, args=(), env=None, expect_status=0, prefix=(),
                 credentials=None):
        self.config_text = default_config_on_free_port() if config is None else config
        # A command that execs spawnd (same pid), e.g. ["prlimit", "--nofile=64:64", "--"].
        self.prefix = list(prefix)
        # grpc.ssl_channel_credentials for a TLS listener; None: plaintext.
        self.credentials = credentials
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.expect_status = expect_status
        self.tmpdir = None
        self.config_path = None
        self.proc = None
        self.pid = None
        self.address = None
        self.channel = None
        self.stub = None
        self.token = "spawnd-e2e-" + uuid.uuid4().hex
        self.baseline = set()
        self._lines = []
        self._cond = threading.Condition()
        self._threads = []
        self._launcher_pid = None
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._force_stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        # With a test failure already propagating, clean up without raising a
        # second error on top of it.
        self.stop(check=exc_type is None)
        return False

    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="spawnd-e2e-")
        self.config_path = os.path.join(self.tmpdir, "spawnd.yaml")
        with open(self.config_path, "w") as f:
            f.write(self.config_text)
        env = dict(os.environ)
        for k in ("SPAWND_LISTEN", "SPAWND_LOG_LEVEL"):
            env.pop(k, None)
        env["SPAWND_E2E_TOKEN"] = self.token
        env.update(self.extra_env)
        argv = self.prefix + [spawnd_binary(), "--config", self.config_path] + self.extra_args
        self.baseline = set(live_processes())
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=self.tmpdir)
        self.pid = self.proc.pid
        for stream, tag in ((self.proc.stderr, ""), (self.proc.stdout, "[stdout] ")):
            t = threading.Thread(target=self._drain, args=(stream, tag), daemon=True)
            t.start()
            self._threads.append(t)
        self.address = self._wait_serving(START_TIMEOUT)
        self.channel = (grpc.secure_channel(self.address, self.credentials)
                        if self.credentials is not None else grpc.insecure_channel(self.address))
        try:
            grpc.channel_ready_future(self.channel).result(timeout=RPC_TIMEOUT)
        except grpc.FutureTimeoutError:
            raise AssertionError("spawnd logged serving on %s but no connection within %.0fs\n%s"
                                 % (self.address, RPC_TIMEOUT, self.stderr_text()))
        self.stub = ProcessStub(self.channel)

    def _drain(self, stream, tag):
        for raw in iter(stream.readline, b""):
            line = tag + raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def log_records(self):
        """The JSON log lines spawnd wrote to stderr so far, parsed."""
        with self._cond:
            lines = list(self._lines)
        out = []
        for line in lines:
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def _wait_serving(self, timeout):
        end = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                while seen < len(self._lines):
                    line = self._lines[seen]
                    seen += 1
                    if not line.startswith("{"):
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("msg") == "serving" and rec.get("address"):
                        addr = rec["address"]
                        if not addr.startswith("unix:"):
                            return addr
                if self.proc.poll() is not None:
                    raise AssertionError("spawnd exited with status %s before serving\n%s"
                                         % (self.proc.returncode, "\n".join(self._lines)))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("spawnd did not log a serving address within %.0fs\n%s"
                                         % (timeout, "\n".join(self._lines)))
                self._cond.wait(min(left, 0.1))

    def stderr_text(self):
        with self._cond:
            return "\n".join(self._lines)

    def launcher_pid(self):
        """Pid of spawnd's launcher: its direct child whose comm is spawnd-launcher."""
        if self._launcher_pid is not None:
            return self._launcher_pid

        def find():
            for info in live_processes().values():
                if info.ppid == self.pid and info.comm == "spawnd-launcher":
                    return info.pid
            return None

        self._launcher_pid = wait_until(find, 5.0 * SLOW, "spawnd's launcher (comm spawnd-launcher, ppid %d)" % self.pid)
        return self._launcher_pid

    def zygote_pid(self, target):
        """The pid of TARGET's forkserver zygote (a child of the launcher named
        z:TARGET), waiting for it within the RPC deadline."""
        launcher = self.launcher_pid()

        def find():
            for pid in descendants(launcher):
                info = proc_info(pid)
                if info is not None and info.ppid == launcher and info.comm == ("z:" + target)[:15]:
                    return pid
            return None
        return wait_until(find, RPC_TIMEOUT, "the zygote of %s" % target)

    def spawned(self, include_server=False):
        """Live processes spawnd started (directly or not) since it started, other
        than spawnd, its launcher and its forkserver zygotes (children of the
        launcher named z:TARGET) unless include_server.

        A new process counts when its parent chain, through new processes only,
        reaches spawnd or this test; or, in Bazel's sandbox, the namespace's init
        (pid 1), which adopts orphans such as a setsid grandchild whose parents
        died; or when it carries this server's environment token (a forked target
        keeps its initial environment block). Processes of Bazel's own test
        runner (test-setup.sh runs `sleep` loops) hang from older processes and
        do not count.
        """
        procs = live_processes()
        me = os.getpid()
        tok = self.token.encode()
        sandboxed = in_bazel_sandbox()
        out = {}
        for pid, info in procs.items():
            if pid in self.baseline:
                continue
            cur, seen = pid, 0
            while cur in procs and cur not in self.baseline and cur != self.pid and seen < 4096:
                cur = procs[cur].ppid
                seen += 1
            if cur in (self.pid, me) or (sandboxed and cur in (0, 1)) or environ_has(pid, tok):
                out[pid] = info
        if not include_server:
            out.pop(self.pid, None)
            if self._launcher_pid is not None:
                out.pop(self._launcher_pid, None)
            else:
                for p, i in list(out.items()):
                    if i.ppid == self.pid and i.comm == "spawnd-launcher":
                        del out[p]
            launcher = self._launcher_pid
            for p, i in list(out.items()):
                if i.comm.startswith("z:") and (launcher is None or i.ppid == launcher):
                    del out[p]
        return out

    def wait_nothing_spawned(self, timeout=VANISH_TIMEOUT, include_server=False, what="spawnd's processes to end"):
        """Waits until spawned() is empty; fails listing the survivors."""
        end = time.monotonic() + timeout
        while True:
            left = self.spawned(include_server=include_server)
            if not left:
                return
            if time.monotonic() >= end:
                raise AssertionError("timed out after %.1fs waiting for %s; still alive:\n  %s" % (
                    timeout, what, "\n  ".join(repr(i) for i in left.values())))
            time.sleep(0.02)

    def kill9(self):
        """SIGKILLs spawnd (the harness then expects status -9 at stop)."""
        os.kill(self.pid, signal.SIGKILL)
        self.expect_status = -signal.SIGKILL

    def wait_exit(self, timeout):
        """Waits for spawnd to exit by itself; returns its status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("spawnd did not exit within %.1fs" % timeout)

    def stop(self, check=True):
        """SIGTERM, wait with a deadline, check status and leftovers."""
        if self._stopped or self.proc is None:
            return
        self._stopped = True
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("spawnd did not exit within %.0fs of SIGTERM (SIGKILLed)" % STOP_TIMEOUT)
        rc = self.proc.returncode
        if self.channel is not None:
            self.channel.close()
        for t in self._threads:
            t.join(timeout=5.0)
            if t.is_alive():
                problems.append("spawnd's stdout/stderr still open 5s after it exited "
                                "(a descendant holds the pipe)")
        if not problems:
            exp = self.expect_status
            if exp == "nonzero":
                if rc == 0:
                    problems.append("spawnd exited with status 0, expected non-zero")
            elif exp is not None and rc != exp:
                problems.append("spawnd exited with status %s, expected %s" % (rc, exp))
        try:
            self.wait_nothing_spawned(include_server=True, what="every process to end after spawnd exited")
        except AssertionError as e:
            problems.append(str(e))
            self._kill_leftovers()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            msg = "; ".join(problems)
            if check:
                raise AssertionError(msg + "\n--- spawnd stderr ---\n" + self.stderr_text())
            sys.stderr.write("[harness] while stopping spawnd after a failure: %s\n" % msg)

    def _force_stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._kill_leftovers()
        self._stopped = True
        if self.channel is not None:
            self.channel.close()

    def _kill_leftovers(self):
        for pid in self.spawned(include_server=True):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    # -- RPC helpers ---------------------------------------------------------

    def start_process(self, target, *args, input=b"", labels=None, timeout=None,
                      destroy_grace_period=None, request_id="", rpc_timeout=RPC_TIMEOUT):
        """StartProcess; returns the Process of the response."""
        req = pb().StartProcessRequest(target=target, args=list(args), input=input,
                                       labels=labels or {}, request_id=request_id)
        if timeout is not None:
            req.timeout.CopyFrom(timeout if not isinstance(timeout, (int, float)) else duration(timeout))
        if destroy_grace_period is not None:
            g = destroy_grace_period
            req.destroy_grace_period.CopyFrom(g if not isinstance(g, (int, float)) else duration(g))
        return self.stub.StartProcess(req, timeout=rpc_timeout).process

    def get(self, pid):
        return self.stub.GetProcess(pb().GetProcessRequest(id=pid), timeout=RPC_TIMEOUT)

    def destroy(self, pid, wait=False, grace=None, rpc_timeout=RPC_TIMEOUT):
        req = pb().DestroyRequest(id=pid, wait=wait)
        if grace is not None:
            req.grace_period.CopyFrom(grace if not isinstance(grace, (int, float)) else duration(grace))
        return self.stub.Destroy(req, timeout=rpc_timeout).process

    def watch(self, pid, timeout=RPC_TIMEOUT, **kw):
        """An open Watch call (an iterator of ProcessEvent) with a deadline."""
        return self.stub.Watch(pb().WatchRequest(id=pid, **kw), timeout=timeout)

    def watch_all_events(self, pid, deadline=RPC_TIMEOUT, **kw):
        """Every event of a single-process Watch until the stream ends OK.

        Fails if it has not ended within DEADLINE seconds; other errors propagate
        as grpc.RpcError.
        """
        return drain(self.watch(pid, timeout=deadline, **kw), "Watch(%s)" % pid)

    def wait_terminal(self, pid, deadline=RPC_TIMEOUT):
        """Watches PID to its end; returns the terminal Process (from the last event)."""
        events = self.watch_all_events(pid, deadline)
        if not events or not is_terminal(events[-1].process):
            raise AssertionError("Watch(%s) ended without a terminal event:\n%s" % (pid, show_events(events)))
        return events[-1].process

    def run(self, target, *args, deadline=RPC_TIMEOUT, **kw):
        """StartProcess then wait_terminal; returns the terminal Process."""
        p = self.start_process(target, *args, **kw)
        return self.wait_terminal(p.id, deadline)


def drain(call, what="Watch", events=()):
    """Reads a server stream to its end; returns EVENTS + what it read.

    Its deadline passing is a test failure listing the events read so far;
    another error status propagates as grpc.RpcError.
    """
    events = list(events)
    try:
        for ev in call:
            events.append(ev)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise AssertionError("%s did not end before its deadline; events:\n%s"
                                 % (what, show_events(events)))
        raise
    return events


_SANDBOXED = None


def in_bazel_sandbox():
    """Whether the test runs in its own PID namespace under Bazel's linux-sandbox."""
    global _SANDBOXED
    if _SANDBOXED is None:
        try:
            with open("/proc/1/comm") as f:
                _SANDBOXED = f.read().strip() == "linux-sandbox"
        except OSError:
            _SANDBOXED = False
    return _SANDBOXED


# ---------------------------------------------------------------------------
# unittest base
# ---------------------------------------------------------------------------


class E2ETest(unittest.TestCase):
    """Base class: fresh servers per test, their stderr shown when a test fails."""

    maxDiff = 4000

    def run(self, result=None):
        self._servers = []
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        r = super().run(result)
        if len(result.failures) + len(result.errors) != before:
            for s in self._servers:
                sys.stderr.write("\n----- spawnd stderr (%s, pid %s) -----\n%s\n-----\n"
                                 % (self.id(), s.pid, s.stderr_text()))
        return r

    def server(self, config=None, **kw):
        """Starts a fresh spawnd; it is stopped (and checked) at cleanup."""
        s = Server(config, **kw)
        self._servers.append(s)
        try:
            s.start()
        except BaseException:
            s._force_stop()
            raise
        self.addCleanup(s.stop)
        return s

    # -- assertions ------------------------------------------------------------

    def assertState(self, p, expected, msg=""):
        self.assertEqual(state(p), expected, "%s process: %s" % (msg, show(p)))

    def assertKind(self, p, expected):
        self.assertTrue(p.HasField("error"), "no error in %s" % show(p))
        self.assertEqual(kind(p), expected, "process: %s" % show(p))

    def assertFlags(self, p, **flags):
        got = {k: getattr(p, k) for k in flags}
        self.assertEqual(got, flags, "flags of %s" % show(p))

    def assertRpcError(self, code, fn, *args, mention=None, **kw):
        """FN(*ARGS) raises grpc.RpcError with CODE (details mention MENTION)."""
        with self.assertRaises(grpc.RpcError) as cm:
            r = fn(*args, **kw)
            if hasattr(r, "__iter__") and not isinstance(r, (bytes, str)):
                list(r)  # streams report their status when read
        err = cm.exception
        self.assertEqual(err.code(), code, "details: %r" % (err.details(),))
        if mention is not None:
            self.assertIn(mention, err.details() or "", "status details should name %r" % mention)
        return err

    def assertServing(self, s):
        """A call that must succeed: the server survived what came before."""
        p = s.run("echo", input=b"still serving")
        self.assertState(p, "SUCCEEDED")
        self.assertEqual(p.result, b"still serving")


def main():
    unittest.main(verbosity=2)
