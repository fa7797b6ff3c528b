"""ListTargets on the default config, and `spawnd --check-config` (SPEC §3, §5)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

SAMPLES = {"echo", "noop", "sleep", "stubborn", "fail", "crash", "exit", "oom", "tree", "spew",
           "true", "exit3"}
EXEC = {"true": ["/bin/true"], "exit3": ["/bin/sh", "-c", "exit 3"]}


class ListTargetsTest(h.E2ETest):

    def test_default_targets(self):
        s = self.server()
        resp = s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT)
        names = [t.name for t in resp.targets]
        self.assertEqual(len(names), len(set(names)), "duplicate names: %s" % names)
        self.assertEqual(set(names), SAMPLES)
        for t in resp.targets:
            with self.subTest(target=t.name):
                if t.name in EXEC:
                    self.assertEqual(h.target_kind(t), "EXEC", h.show(t))
                    self.assertEqual(h.start_method(t.start_method), "SPAWN", h.show(t))
                    self.assertEqual(list(t.exec), EXEC[t.name], h.show(t))
                else:
                    self.assertEqual(h.target_kind(t), "FUNCTION", h.show(t))
                    self.assertEqual(h.start_method(t.start_method), "FORK", h.show(t))
                    self.assertEqual(t.function, "builtin:" + t.name, h.show(t))
                self.assertTrue(t.description, "every sample has a description")
                self.assertEqual(t.running, 0)
                self.assertEqual(t.pending, 0)
                self.assertEqual(t.limits.destroy_grace_period.ToNanoseconds(), 10 * 10**9, h.show(t))
                self.assertEqual(t.limits.max_result_bytes, 1 << 20, h.show(t))
                self.assertEqual(t.limits.stop_signal.upper().replace("SIG", ""), "TERM", h.show(t))
        oom = [t for t in resp.targets if t.name == "oom"][0]
        self.assertEqual(oom.limits.memory_limit, 64 << 20, h.show(oom))

    def test_running_count(self):
        s = self.server()
        p = s.start_process("sleep")
        h.wait_until(lambda: s.get(p.id).pid > 0, h.RPC_TIMEOUT, "sleep to run")

        def sleep_target():
            resp = s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT)
            return [t for t in resp.targets if t.name == "sleep"][0]

        self.assertEqual(sleep_target().running, 1)
        s.destroy(p.id, wait=True)
        self.assertEqual(sleep_target().running, 0)

    def test_library_target_listed(self):
        lib = h.samples_library()
        s = self.server(h.minimal_config({
            "echo_lib": "{function: {library: %s, symbol: spawnd_sample_echo}, start_method: fork}"
                        % h.yaml_str(lib),
        }))
        resp = s.stub.ListTargets(h.pb().ListTargetsRequest(), timeout=h.RPC_TIMEOUT)
        self.assertEqual([t.name for t in resp.targets], ["echo_lib"])
        t = resp.targets[0]
        self.assertEqual(h.target_kind(t), "FUNCTION")
        self.assertIn("spawnd_sample_echo", t.function)


class CheckConfigTest(h.E2ETest):

    def check(self, text):
        d = tempfile.mkdtemp(prefix="spawnd-e2e-cc-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "conf.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([h.spawnd_binary(), "--check-config", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30 * h.SLOW)
        return path, r

    def test_default_config_is_valid(self):
        path, r = self.check(h.default_config_text())
        self.assertEqual(r.returncode, 0, "stderr:\n" + r.stderr)

    def test_minimal_config_is_valid(self):
        path, r = self.check(h.minimal_config({"echo": "{function: builtin:echo}",
                                               "t": '{exec: ["/bin/true"]}'}))
        self.assertEqual(r.returncode, 0, "stderr:\n" + r.stderr)

    def assertConfigError(self, text, line, key):
        path, r = self.check(text)
        self.assertEqual(r.returncode, 1, "stderr:\n" + r.stderr)
        # The brief's format is `FILE:LINE:COL: key: message`; a leading
        # "spawnd: " program name is tolerated.
        m = re.search(r"(?:^|^spawnd: )%s:(\d+):(\d+): (.*)$" % re.escape(path), r.stderr, re.M)
        self.assertIsNotNone(m, "no FILE:LINE:COL: in stderr:\n" + r.stderr)
        self.assertEqual(int(m.group(1)), line, "line of the error:\n" + r.stderr)
        self.assertGreaterEqual(int(m.group(2)), 1, "columns count from 1:\n" + r.stderr)
        self.assertIn(key, m.group(3), "the message names the key:\n" + r.stderr)

    def test_unknown_key(self):
        self.assertConfigError(
            'listen: ["127.0.0.1:0"]\n'
            "targets:\n"
            "  echo: {function: builtin:echo}\n"
            "  noop: {function: builtin:noop, bogus_key: 1}\n",
            line=4, key="bogus_key")

    def test_duration_without_unit(self):
        self.assertConfigError(
            'listen: ["127.0.0.1:0"]\n'
            "defaults:\n"
            "  destroy_grace_period: 10\n"
            "targets:\n"
            "  echo: {function: builtin:echo}\n",
            line=3, key="destroy_grace_period")

    def test_yaml_syntax_error(self):
        path, r = self.check('listen: ["127.0.0.1:0"\ntargets: {\n')
        self.assertEqual(r.returncode, 1, "stderr:\n" + r.stderr)
        self.assertRegex(r.stderr, r"(?m)^(spawnd: )?%s:2:\d+: " % re.escape(path))

    def test_missing_file(self):
        r = subprocess.run([h.spawnd_binary(), "--check-config", "/nonexistent/spawnd-e2e.yaml"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30 * h.SLOW)
        self.assertEqual(r.returncode, 1, "stderr:\n" + r.stderr)
        self.assertIn("/nonexistent/spawnd-e2e.yaml", r.stderr)

    def test_server_refuses_bad_config(self):
        path, _ = self.check("listen: [\"127.0.0.1:0\"]\nnope: 1\ntargets: {}\n")
        r = subprocess.run([h.spawnd_binary(), "--config", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30 * h.SLOW)
        self.assertNotEqual(r.returncode, 0, "spawnd must not serve an invalid config")
        self.assertIn("%s:2:" % path, r.stderr)

    def test_version(self):
        r = subprocess.run([h.spawnd_binary(), "--version"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=h.RPC_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^spawnd \d+\.\d+\.\d+ \((release|asan\+ubsan) build; gRPC core [\d.]+, protobuf-c [\d.]+\)\n$")


if __name__ == "__main__":
    h.main()
