"""Prometheus metrics (issue 10, point 5; SPEC §12 "Metrics").

The real spawnd with `metrics: {listen: "127.0.0.1:0"}`; known work through the
API, then /metrics parsed with python3-prometheus-client's parser: counts by
target, state and error kind, running and pending, the latency and duration
histograms, watchers, zygote restarts, launcher up, the gRPC server metrics by
service, method and code, the process metrics of the front and the launcher;
label values bounded; 404 and 405; every descriptor close-on-exec; hostile
HTTP clients do not hurt the gRPC service; a metrics address in use stops
spawnd at start.
"""

import os
import signal
import socket
import subprocess
import time
import unittest

import grpc

import spawnd_harness as h
from metrics_util import METRICS_CONFIG, Scrape, get, metrics_address, scrape, wait_value

SVC = "spawnd.v1.ProcessService"


def config(extra_targets=None):
    targets = {
        "echo": "{function: builtin:echo}",
        "fail": "{function: builtin:fail}",
        "sleep": "{function: builtin:sleep}",
        "zsleep": "{function: builtin:sleep, start_method: forkserver, zygote_start: boot}",
        "exit3": '{exec: ["/bin/sh", "-c", "exit 3"]}',
    }
    targets.update(extra_targets or {})
    return h.minimal_config(targets, extra=METRICS_CONFIG + "\nmax_running: 2")


class MetricsTest(h.E2ETest):
    def test_counts_after_known_work(self):
        s = self.server(config())
        addr = metrics_address(s)
        before = scrape(addr)
        for name in ("echo", "fail", "sleep", "zsleep", "exit3"):
            self.assertEqual(before.value("spawnd_processes_started_total", target=name), 0)
            self.assertEqual(before.value("spawnd_processes_running", target=name), 0)
            self.assertEqual(before.value("spawnd_processes_pending", target=name), 0)
            self.assertEqual(before.value("spawnd_zygote_restarts_total", target=name), 0)
        self.assertEqual(before.value("spawnd_launcher_up"), 1)
        self.assertEqual(before.value("spawnd_watchers"), 0)
        self.assertEqual(before.value("spawnd_store_errors_total"), 0)
        self.assertEqual(before.value("spawnd_store_commit_seconds_count"), 0)

        # 3 echo succeeded, 1 fail raised, 1 exit3 EXIT_CODE.
        for i in range(3):
            self.assertState(s.run("echo", "hi", str(i)), "SUCCEEDED")
        self.assertKind(s.run("fail", "ValueError", "boom"), "RAISED")
        self.assertKind(s.run("exit3"), "EXIT_CODE")
        # 2 sleeps fill max_running; a third waits PENDING.
        a = s.start_process("sleep")
        b = s.start_process("sleep")
        c = s.start_process("sleep")
        self.assertState(c, "PENDING")
        m = wait_value(addr, "spawnd_processes_running", 2, target="sleep")
        self.assertEqual(m.value("spawnd_processes_pending", target="sleep"), 1)
        # Destroyed: two while running, one while pending (never ran).
        for p in (c, a, b):
            self.assertState(s.destroy(p.id, wait=True, grace=0), "CANCELED")
        m = wait_value(addr, "spawnd_processes_running", 0, target="sleep")
        self.assertEqual(m.value("spawnd_processes_pending", target="sleep"), 0)

        ended = "spawnd_processes_ended_total"
        self.assertEqual(m.value("spawnd_processes_started_total", target="echo"), 3)
        self.assertEqual(m.value("spawnd_processes_started_total", target="fail"), 1)
        self.assertEqual(m.value("spawnd_processes_started_total", target="sleep"), 3)
        self.assertEqual(m.value(ended, target="echo", state="SUCCEEDED", error_kind=""), 3)
        self.assertEqual(m.value(ended, target="fail", state="FAILED", error_kind="RAISED"), 1)
        self.assertEqual(m.value(ended, target="exit3", state="FAILED", error_kind="EXIT_CODE"), 1)
        self.assertEqual(m.value(ended, target="sleep", state="CANCELED", error_kind=""), 3)
        self.assertEqual(m.value(ended, target="echo", state="CANCELED", error_kind=""), 0)
        # Histograms: every process that ran; the one destroyed PENDING never did.
        lat = "spawnd_process_start_latency_seconds"
        dur = "spawnd_process_duration_seconds"
        self.assertEqual(m.value(lat + "_count", target="echo"), 3)
        self.assertEqual(m.value(lat + "_bucket", target="echo", le="+Inf"), 3)
        self.assertEqual(m.value(lat + "_count", target="sleep"), 2)
        self.assertEqual(m.value(dur + "_count", target="echo"), 3)
        self.assertEqual(m.value(dur + "_count", target="sleep"), 2)
        self.assertGreater(m.value(lat + "_sum", target="echo"), 0)
        self.assertLess(m.value(lat + "_sum", target="echo"), 30)
        # Buckets are cumulative and end at the count.
        buckets = sorted((float(dict(k)["le"]), v) for k, v in m.series(lat + "_bucket").items()
                         if dict(k)["target"] == "echo")
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertEqual(buckets[-1], (float("inf"), 3))

        # gRPC by service, method and code: 9 StartProcess OK; a GetProcess
        # NOT_FOUND; an INVALID_ARGUMENT.
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.get, "no-such-id")
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.start_process, "no-such-target")
        m = scrape(addr)
        ident = dict(grpc_type="unary", grpc_service=SVC, grpc_method="StartProcess")
        self.assertEqual(m.value("grpc_server_started_total", **ident), 9)
        self.assertEqual(m.value("grpc_server_handled_total", grpc_code="OK", **ident), 8)
        self.assertEqual(m.value("grpc_server_handled_total", grpc_code="NOT_FOUND", **ident), 1)
        self.assertEqual(m.value("grpc_server_handling_seconds_count", **ident), 9)
        get_nf = dict(grpc_type="unary", grpc_service=SVC, grpc_method="GetProcess",
                      grpc_code="NOT_FOUND")
        self.assertEqual(m.value("grpc_server_handled_total", **get_nf), 1)
        # Watch: every s.run watched its process to the end (OK).
        watch = dict(grpc_type="server_stream", grpc_service=SVC, grpc_method="Watch")
        self.assertEqual(m.value("grpc_server_handled_total", grpc_code="OK", **watch), 5)
        # Methods never called are there at 0.
        self.assertEqual(m.value("grpc_server_started_total", grpc_type="unary",
                                 grpc_service=SVC, grpc_method="ListTargets"), 0)

    def test_watchers_gauge_and_process_metrics(self):
        s = self.server(config())
        addr = metrics_address(s)
        call = s.stub.Watch(h.pb().WatchRequest(), timeout=h.RPC_TIMEOUT)
        it = iter(call)
        s.start_process("echo", "x")
        next(it)  # the stream is open: its first event came
        wait_value(addr, "spawnd_watchers", 1)
        call.cancel()
        m = wait_value(addr, "spawnd_watchers", 0)
        watch = dict(grpc_type="server_stream", grpc_service=SVC, grpc_method="Watch")
        h.wait_until(lambda: scrape(addr).value("grpc_server_handled_total", grpc_code="CANCELLED",
                                                **watch) == 1, h.RPC_TIMEOUT,
                     "the cancelled Watch counted CANCELLED")

        # The front's and the launcher's own figures.
        now = time.time()
        self.assertGreater(m.value("process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(m.value("process_open_fds"), 3)
        self.assertGreaterEqual(m.value("process_cpu_seconds_total"), 0)
        self.assertLess(abs(m.value("process_start_time_seconds") - now), 120 * h.SLOW)
        self.assertGreater(m.value("spawnd_launcher_resident_memory_bytes"), 100 << 10)
        self.assertGreater(m.value("spawnd_launcher_open_fds"), 2)
        self.assertIsNotNone(m.value("spawnd_launcher_cpu_seconds_total"))
        with open("/proc/%d/stat" % s.launcher_pid()) as f:
            rss_pages = int(f.read().rsplit(")", 1)[1].split()[21])
        self.assertLess(abs(m.value("spawnd_launcher_resident_memory_bytes")
                            - rss_pages * os.sysconf("SC_PAGE_SIZE")), 64 << 20)

    def test_zygote_restart_and_launcher_lost(self):
        s = self.server(config(), expect_status="nonzero")
        addr = metrics_address(s)
        z = s.zygote_pid("zsleep")
        os.kill(z, signal.SIGKILL)
        wait_value(addr, "spawnd_zygote_restarts_total", 1, target="zsleep")
        # The launcher dies: the gauge says so while spawnd goes down.
        os.kill(s.launcher_pid(), signal.SIGKILL)
        seen = []

        def down():
            try:
                v = scrape(addr).value("spawnd_launcher_up")
            except (OSError, AssertionError):
                return "gone"  # spawnd exited (it does, non-zero) before a scrape
            seen.append(v)
            return v == 0
        h.wait_until(down, h.RPC_TIMEOUT, "spawnd_launcher_up 0")
        self.assertNotIn(1.0, seen[1:])

    def test_label_values_are_bounded(self):
        s = self.server(config())
        addr = metrics_address(s)
        ids = [s.run("echo", str(i)).id for i in range(5)]
        # A method the server does not have: UNIMPLEMENTED, and no series.
        bogus = s.channel.unary_unary("/%s/NoSuchMethod" % SVC)
        self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, bogus, b"", timeout=h.RPC_TIMEOUT)
        bogus2 = s.channel.unary_unary("/x.Evil/%s" % ("A" * 200))
        self.assertRpcError(grpc.StatusCode.UNIMPLEMENTED, bogus2, b"", timeout=h.RPC_TIMEOUT)
        m = scrape(addr)
        for pid in ids:
            self.assertNotIn(pid, m.text)
        self.assertNotIn("NoSuchMethod", m.text)
        self.assertNotIn("x.Evil", m.text)
        labels = set()
        for (name, lbls), _ in m.samples.items():
            for k, v in lbls:
                labels.add(k)
        self.assertEqual(labels - {"target", "state", "error_kind", "grpc_type", "grpc_service",
                                   "grpc_method", "grpc_code", "le"}, set())

    def test_standard_services_are_counted(self):
        s = self.server(config())
        addr = metrics_address(s)
        check = s.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=h.RPC_TIMEOUT), b"\x08\x01")  # SERVING
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, check, b"\x0a\x03nah",
                            timeout=h.RPC_TIMEOUT)
        # Reflection (bidi): list_services (field 7), then the client closes.
        refl = s.channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        answers = list(refl(iter([b"\x3a\x00"]), timeout=h.RPC_TIMEOUT))
        self.assertEqual(len(answers), 1)
        hc = dict(grpc_type="unary", grpc_service="grpc.health.v1.Health", grpc_method="Check")
        rf = dict(grpc_type="bidi_stream", grpc_service="grpc.reflection.v1.ServerReflection",
                  grpc_method="ServerReflectionInfo")

        def counted():
            m = scrape(addr)
            return (m.value("grpc_server_handled_total", grpc_code="OK", **hc) == 1
                    and m.value("grpc_server_handled_total", grpc_code="NOT_FOUND", **hc) == 1
                    and m.value("grpc_server_handled_total", grpc_code="OK", **rf) == 1
                    and m.value("grpc_server_started_total", **rf) == 1)
        h.wait_until(counted, h.RPC_TIMEOUT, "health and reflection calls counted by code")

    def test_http_paths_methods_and_format(self):
        s = self.server(config())
        addr = metrics_address(s)
        status, headers, body = get(addr)
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        Scrape(body)  # parses
        for path in ("/", "/metric", "/metrics/x", "/debug"):
            self.assertEqual(get(addr, path)[0], 404, path)
        status, headers, _ = get(addr, method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")
        self.assertEqual(get(addr, method="HEAD")[0], 200)

    def test_every_descriptor_is_close_on_exec(self):
        s = self.server(config())
        addr = metrics_address(s)
        scrape(addr)
        # An open scrape connection too.
        host, port = addr.rsplit(":", 1)
        c = socket.create_connection((host, int(port)), timeout=5)
        try:
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(100)
            bad = []
            for pid in (s.pid, s.launcher_pid()):
                for fd in os.listdir("/proc/%d/fd" % pid):
                    if int(fd) <= 2:
                        continue
                    try:
                        with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                            flags = int([l for l in f if l.startswith("flags:")][0].split()[1], 8)
                        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        continue  # closed meanwhile
                    if not flags & os.O_CLOEXEC:
                        bad.append("pid %d fd %s -> %s" % (pid, fd, target))
            self.assertEqual(bad, [], "descriptors without O_CLOEXEC")
        finally:
            c.close()

    def test_hostile_http_clients_do_not_hurt_grpc(self):
        s = self.server(config())
        addr = metrics_address(s)
        host, port = addr.rsplit(":", 1)
        fds_before = len(os.listdir("/proc/%d/fd" % s.pid))
        socks = []
        try:
            # Far more connections than the listener takes, each sending half a
            # request (slowloris) or nothing, and one huge header.
            for i in range(60):
                try:
                    c = socket.create_connection((host, int(port)), timeout=5)
                except OSError:
                    break
                c.setblocking(False)
                try:
                    c.send(b"GET /metrics HTTP/1.1\r\nX-Slow: " if i % 2 else b"")
                except OSError:
                    pass
                socks.append(c)
            big = socket.create_connection((host, int(port)), timeout=5)
            socks.append(big)
            big.setblocking(False)
            try:
                big.send(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20))
            except OSError:
                pass
            # gRPC goes on, at its usual speed.
            t0 = time.monotonic()
            for i in range(5):
                self.assertState(s.run("echo", str(i)), "SUCCEEDED")
            self.assertLess(time.monotonic() - t0, 10 * h.SLOW)
            # The front holds a bounded number of descriptors for them.
            fds = len(os.listdir("/proc/%d/fd" % s.pid))
            self.assertLessEqual(fds - fds_before, 16 + 4)
        finally:
            for c in socks:
                c.close()
        # Once they are gone, scrapes work again.
        h.wait_until(lambda: get(addr, timeout=2)[0] == 200 if _reachable(addr) else False,
                     30 * h.SLOW, "a scrape to work again")

    def test_reload_adds_series_and_keeps_the_listener(self):
        s = self.server(config())
        addr = metrics_address(s)
        self.assertState(s.run("echo"), "SUCCEEDED")
        with open(s.config_path, "w") as f:
            f.write(config({"added": "{function: builtin:noop}"}).replace(
                METRICS_CONFIG, 'metrics: {listen: "127.0.0.1:1"}'))
        os.kill(s.pid, signal.SIGHUP)
        m = wait_value(addr, "spawnd_processes_started_total", 0, target="added")
        # Counts survive the reload; the listener stays where it was.
        self.assertEqual(m.value("spawnd_processes_started_total", target="echo"), 1)
        h.wait_until(lambda: any(r.get("msg", "").startswith("SIGHUP: this setting needs a restart")
                                 and "metrics.listen" in str(r) for r in s.log_records()),
                     h.RPC_TIMEOUT, "the reload to keep metrics.listen")
        self.assertState(s.run("added"), "SUCCEEDED")
        wait_value(addr, "spawnd_processes_ended_total", 1, target="added", state="SUCCEEDED",
                   error_kind="")

    def test_store_commits_and_failures(self):
        import resource
        d = self.tmpdir()
        path = os.path.join(d, "records.db")
        s = self.server(h.minimal_config({"echo": "{function: builtin:echo}"},
                                         extra="%s\nstore: {path: %s}" % (METRICS_CONFIG, h.yaml_str(path))))
        addr = metrics_address(s)
        self.assertState(s.run("echo"), "SUCCEEDED")
        h.wait_until(lambda: scrape(addr).value("spawnd_store_commit_seconds_count", 0) >= 1,
                     h.RPC_TIMEOUT, "a store commit counted")
        m = scrape(addr)
        self.assertGreater(m.value("spawnd_store_commit_seconds_sum"), 0)
        self.assertEqual(m.value("spawnd_store_errors_total"), 0)
        # A full disk (no file may grow): failed writes are counted.
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            self.assertState(s.run("echo", "x" * 4096), "SUCCEEDED")
            h.wait_until(lambda: scrape(addr).value("spawnd_store_errors_total") >= 1,
                         h.RPC_TIMEOUT, "spawnd_store_errors_total to count the failure")
        finally:
            resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (soft, hard))

    def test_no_metrics_without_the_key(self):
        s = self.server(h.minimal_config({"echo": "{function: builtin:echo}"}))
        self.assertState(s.run("echo"), "SUCCEEDED")
        self.assertFalse([r for r in s.log_records() if r.get("msg") == "metrics serving"])

    def test_address_in_use_stops_spawnd(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            cfg = h.minimal_config({"echo": "{function: builtin:echo}"},
                                   extra='metrics: {listen: "127.0.0.1:%d"}' % port)
            path = os.path.join(self.tmpdir(), "m.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            r = subprocess.run([h.spawnd_binary(), "--config", path], capture_output=True,
                               text=True, timeout=h.START_TIMEOUT)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot serve metrics", r.stderr)
            self.assertIn("127.0.0.1:%d" % port, r.stderr)
            self.assertIn("Address already in use", r.stderr)
            # --check-config validates the form, not the port.
            r = subprocess.run([h.spawnd_binary(), "--check-config", path], capture_output=True,
                               text=True, timeout=h.START_TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            busy.close()

    def tmpdir(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="metrics-e2e-")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        return d


def _reachable(addr):
    try:
        get(addr, timeout=2)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
