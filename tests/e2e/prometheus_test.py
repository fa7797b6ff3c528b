"""A real Prometheus scrapes spawnd (issue 10, point 5): Debian's `prometheus`
server, started on loopback with a generated config (scrape_interval 1s, a
temporary storage directory), scrapes the real spawnd's /metrics; the counts
after known work are read back through Prometheus' HTTP query API, and every
query of the Grafana dashboard and of the README's operations section
evaluates there without error.

Heavy (a Go server, its TSDB): plain build only. Under the sanitizer build
(SPAWND_SANITIZED=1, set by --config=asan) it is skipped; it adds nothing that
the sanitizers check (spawnd's side is metrics_test's). Tagged "heavy".
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import spawnd_harness as h
from metrics_util import METRICS_CONFIG, metrics_address

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
#: Prometheus needs a few seconds to start and to scrape.
PROM_TIMEOUT = 60.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prometheus:
    """A prometheus server scraping TARGET every second, on a free loopback port."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="spawnd-prom-")
        self.target = target
        self.proc = None
        self.address = None
        self.log_path = os.path.join(self.dir, "prometheus.log")

    def start(self):
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: spawnd\n"
                    "    metrics_path: /metrics\n"
                    "    static_configs: [{targets: [%s]}]\n" % json.dumps(self.target))
        # A port taken between free_port() and prometheus' bind: try another.
        for _ in range(5):
            self.address = "127.0.0.1:%d" % free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + cfg,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=" + self.address, "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir)
            log.close()
            end = time.monotonic() + PROM_TIMEOUT
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen("http://%s/-/ready" % self.address, timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                raise AssertionError("prometheus not ready within %.0fs:\n%s" % (PROM_TIMEOUT, self.log()))
            if "address already in use" not in self.log():
                raise AssertionError("prometheus exited %s:\n%s" % (self.proc.returncode, self.log()))
        raise AssertionError("prometheus could not bind a port:\n%s" % self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, expr):
        """The API's answer to an instant query (status "success" or an AssertionError)."""
        url = "http://%s/api/v1/query?%s" % (self.address, urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError("query %s: HTTP %d %s" % (expr, e.code, e.read()[:500]))
        if body.get("status") != "success":
            raise AssertionError("query %s: %s" % (expr, body))
        return body["data"]

    def value(self, expr):
        """The single value of a vector query, or None when it is empty."""
        data = self.query(expr)
        res = data["result"]
        if data["resultType"] == "scalar":
            return float(res[1])
        if not res:
            return None
        if len(res) != 1:
            raise AssertionError("query %s: %d series: %s" % (expr, len(res), res))
        return float(res[0]["value"][1])

    def wait_value(self, expr, want, timeout=PROM_TIMEOUT):
        end = time.monotonic() + timeout
        got = None
        while time.monotonic() < end:
            got = self.value(expr)
            if got == want:
                return
            time.sleep(0.2)
        raise AssertionError("%s is %r, not %r, after %.0fs\n%s" % (expr, got, want, timeout, self.log()))


def dashboard_queries():
    path = os.path.join(h.runfiles_root(), "deploy", "grafana", "spawnd.json")
    with open(path) as f:
        d = json.load(f)
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"].replace("$__rate_interval", "1m")
            e = e.replace("$instance", ".*").replace("$target", ".*")
            out.append(e)
    return out


def readme_queries():
    with open(os.path.join(h.runfiles_root(), "README.md")) as f:
        block = re.search(r"```promql\n(.*?)```", f.read(), re.S).group(1)
    return [l for l in block.splitlines() if l.strip() and not l.startswith("#")]


@unittest.skipIf(h.SANITIZED, "heavy: a real Prometheus server; plain build only")
@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK), "Debian's prometheus is not installed")
class PrometheusTest(h.E2ETest):
    def test_prometheus_scrapes_the_counts(self):
        s = self.server(h.minimal_config({
            "echo": "{function: builtin:echo}",
            "fail": "{function: builtin:fail}",
            "sleep": "{function: builtin:sleep}",
        }, extra=METRICS_CONFIG))
        prom = Prometheus(metrics_address(s))
        self.addCleanup(prom.stop)
        prom.start()
        prom.wait_value('up{job="spawnd"}', 1)

        # Known work: 3 echo succeeded, 1 failed, 1 destroyed.
        for i in range(3):
            self.assertState(s.run("echo", str(i)), "SUCCEEDED")
        self.assertKind(s.run("fail", "ValueError", "boom"), "RAISED")
        p = s.start_process("sleep")
        self.assertState(s.destroy(p.id, wait=True, grace=0), "CANCELED")

        ended = "spawnd_processes_ended_total"
        prom.wait_value('%s{target="echo",state="SUCCEEDED",error_kind=""}' % ended, 3)
        prom.wait_value('%s{target="fail",state="FAILED",error_kind="RAISED"}' % ended, 1)
        prom.wait_value('%s{target="sleep",state="CANCELED",error_kind=""}' % ended, 1)
        prom.wait_value("sum(spawnd_processes_started_total)", 5)
        prom.wait_value('spawnd_process_start_latency_seconds_count{target="echo"}', 3)
        prom.wait_value('sum(spawnd_processes_running) + sum(spawnd_processes_pending)', 0)
        prom.wait_value('grpc_server_handled_total{grpc_method="StartProcess",grpc_code="OK"}', 5)
        prom.wait_value("spawnd_launcher_up", 1)
        self.assertGreater(prom.value("process_resident_memory_bytes"), 0)
        self.assertGreater(prom.value("spawnd_launcher_open_fds"), 0)

        # Every dashboard and README query is valid PromQL over these series;
        # those over counters and histograms with data have a value.
        queries = dashboard_queries() + readme_queries()
        self.assertGreaterEqual(len(queries), 20)
        for q in queries:
            with self.subTest(query=q):
                prom.query(q)
        # A rate needs two scrapes within its window: wait for one more.
        q = readme_queries()[1]
        h.wait_until(lambda: any(r["value"][1] not in ("NaN",)
                                 for r in prom.query(q)["result"]),
                     PROM_TIMEOUT, "p99 start latency of echo to have a value")


if __name__ == "__main__":
    unittest.main()
