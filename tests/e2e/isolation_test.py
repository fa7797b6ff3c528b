"""The launcher is exec'd with an empty environment (issue 7, defect 4) and
raises its open files limit so that max_running is reachable (defect 10).

- No child of any start method can read spawnd's environment: a fork-method
  child used to see the launcher's startup environment (a plain fork of the
  front) in /proc/self/environ, e.g. a secret token given to spawnd.
- With a soft RLIMIT_NOFILE of 1024 and a hard one that carries it, 300 live
  children all run (the launcher holds 4 descriptors per child: at 1024 it
  failed beyond ~253 with EMFILE); a max_running the hard limit cannot carry
  is refused at load, naming both numbers, by spawnd and --check-config.
"""

import os
import resource
import subprocess

import spawnd_harness as h

SECRET = b"spawnd-e2e-secret-" + os.urandom(8).hex().encode()


class EnvironmentTest(h.E2ETest):
    def test_no_child_sees_spawnd_environment(self):
        spec = '{function: builtin:proc_environ, start_method: %s, env: {E2E_OWN: "mine"}}'
        lib = ('{function: {library: %s, symbol: spawnd_sample_proc_environ}, '
               'start_method: fork}' % h.yaml_str(h.samples_library()))
        s = self.server(h.minimal_config({
            "env_fork": spec % "fork",
            "env_forkserver": spec % "forkserver",
            "env_spawn": spec % "spawn",
            "env_library": lib,
        }), env={"SPAWND_E2E_SECRET": SECRET.decode()})
        for target in ("env_fork", "env_forkserver", "env_spawn", "env_library"):
            p = s.run(target)
            self.assertState(p, "SUCCEEDED", target)
            self.assertFalse(SECRET in p.result,
                             "%s reads spawnd's environment in /proc/self/environ (%d bytes)"
                             % (target, len(p.result)))
        # The sample reads the real block: a spawn child's is its target's env.
        p = s.run("env_spawn")
        self.assertIn(b"E2E_OWN=mine", p.result.split(b"\0"))
        # Nor does the launcher itself hold it.
        launcher = s.launcher_pid()
        self.assertFalse(h.environ_has(launcher, SECRET), "the launcher's environment")
        with open("/proc/%d/environ" % launcher, "rb") as f:
            self.assertEqual(f.read(), b"", "the launcher's environment is empty")

    def test_inherit_env_is_resolved_by_the_front(self):
        s = self.server(h.minimal_config({
            "inh": "{function: builtin:proc_environ, start_method: spawn, "
                   "inherit_env: [SPAWND_E2E_INHERITED, SPAWND_E2E_ABSENT]}",
        }), env={"SPAWND_E2E_INHERITED": "value=with=equals"})
        p = s.run("inh")
        self.assertState(p, "SUCCEEDED")
        self.assertEqual([e for e in p.result.split(b"\0") if e.startswith(b"SPAWND_E2E")],
                         [b"SPAWND_E2E_INHERITED=value=with=equals"])


class FdLimitTest(h.E2ETest):
    COUNT = 300

    def test_max_running_beyond_the_default_soft_limit(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 24 + 2 + 4 * (self.COUNT + 8)
        if hard != resource.RLIM_INFINITY and hard < need:
            self.skipTest("the hard RLIMIT_NOFILE (%d) is below %d" % (hard, need))
        config = h.minimal_config({"sleep": "{function: builtin:sleep}",
                                   "echo": "{function: builtin:echo}"},
                                  extra="max_running: %d" % (self.COUNT + 8))
        # spawnd inherits a soft limit of 1024, the usual default.
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        try:
            s = self.server(config)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        ids = [s.start_process("sleep").id for _ in range(self.COUNT)]

        def states():
            return [h.state(s.get(i)) for i in ids]

        def all_running():
            st = states()
            bad = [x for x in st if x != "RUNNING"]
            if [x for x in bad if x in h.TERMINAL_STATES]:
                raise AssertionError("not all %d started: %s; e.g. %s" % (
                    self.COUNT, {x: st.count(x) for x in set(st)},
                    h.show(s.get(ids[st.index(bad[0])]))))
            return not bad
        h.wait_until(all_running, h.RPC_TIMEOUT * 3, "%d sleeps RUNNING" % self.COUNT, 0.2)
        self.assertServing(s)
        for i in ids:
            s.destroy(i, grace=0)

    def _refused(self, argv, max_running, hard):
        r = subprocess.run(["prlimit", "--nofile=%d:%d" % (hard, hard), "--"] + argv,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=h.START_TIMEOUT)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("max_running: %d needs" % max_running, err)
        self.assertIn("hard limit (RLIMIT_NOFILE) is %d" % hard, err)
        self.assertIn(":2:14: max_running:", err, "file:line:column of max_running")

    def test_max_running_the_hard_limit_cannot_carry_is_refused(self):
        cfg = os.path.join(h.tempfile.mkdtemp(), "spawnd.yaml")
        with open(cfg, "w") as f:
            f.write(h.minimal_config({"sleep": "{function: builtin:sleep}"}).replace(
                "\nlog:", "\nmax_running: 300\nlog:", 1))
        with open(cfg) as f:
            self.assertEqual(f.read().splitlines()[1], "max_running: 300")
        self._refused([h.spawnd_binary(), "--check-config", cfg], 300, 1024)
        self._refused([h.spawnd_binary(), "--config", cfg], 300, 1024)


if __name__ == "__main__":
    h.main()
