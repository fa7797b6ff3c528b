"""Helpers for the metrics tests: where a spawnd serves /metrics, a scrape
parsed with python3-prometheus-client's parser, and polling a value.

Every wait polls with a deadline; nothing sleeps "long enough".
"""

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import spawnd_harness as h

METRICS_CONFIG = 'metrics: {listen: "127.0.0.1:0"}'


def metrics_address(server, timeout=h.START_TIMEOUT):
    """HOST:PORT spawnd logged as "metrics serving"."""
    def find():
        for rec in server.log_records():
            if rec.get("msg") == "metrics serving" and rec.get("address"):
                return rec["address"]
        return None
    return h.wait_until(find, timeout, "spawnd to log 'metrics serving'")


def get(address, path="/metrics", method="GET", timeout=10.0):
    """(status, headers, body text) of one HTTP request to ADDRESS."""
    req = urllib.request.Request("http://%s%s" % (address, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


class Scrape:
    """One /metrics answer, parsed: samples by (name, labels)."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name):
        """{labels tuple: value} of every sample named NAME."""
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def scrape(address):
    status, headers, body = get(address)
    if status != 200:
        raise AssertionError("GET /metrics: %d %s" % (status, body[:500]))
    return Scrape(body)


def wait_value(address, name, want, timeout=h.RPC_TIMEOUT, **labels):
    """Scrapes until NAME{LABELS} == WANT; returns the last scrape."""
    end = time.monotonic() + timeout
    while True:
        s = scrape(address)
        got = s.value(name, **labels)
        if got == want:
            return s
        if time.monotonic() >= end:
            raise AssertionError("%s%s is %r, not %r, after %.1fs" % (name, labels, got, want, timeout))
        time.sleep(0.05)
