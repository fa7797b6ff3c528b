"""Hardened children, proven from inside them (issue 9, SPEC §7): the
environment is the target's env + inherit_env only; user and group, with the
user's supplementary groups; cwd; umask; PR_SET_NO_NEW_PRIVS; only 0, 1, 2
(and the result channel of a function) open. Under fork, forkserver and spawn,
and for an exec target. The `whoami` test builtin reports it."""

import grp
import os
import pwd
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spawnd_harness as h  # noqa: E402

METHODS = ("fork", "forkserver", "spawn")
ROOT = os.geteuid() == 0
# What an exec target reports, one "KEY VALUE" line each, like whoami.
SH_REPORT = ("echo uid $(id -u); echo gid $(id -g); echo groups $(id -G | tr ' ' ,); "
             "echo no_new_privs $(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status); "
             "echo umask $(umask); echo cwd $(pwd); "
             "echo fds $(ls /proc/self/fd | tr '\\n' , ); env | sed 's/^/env /'")


def parse(result):
    out = {"env": {}}
    for line in result.decode().splitlines():
        key, _, value = line.partition(" ")
        if key == "env":
            name, _, v = value.partition("=")
            out["env"][name] = v
        else:
            out[key] = value
    return out


def identity():
    """A user and group other than root's to run as, with its groups."""
    for name in ("nobody", "daemon"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        groups = sorted(set(os.getgrouplist(name, pw.pw_gid)))
        return name, pw.pw_uid, grp.getgrgid(pw.pw_gid).gr_name, pw.pw_gid, groups
    return None


class HardeningTest(h.E2ETest):

    def config(self, cwd, ident):
        who = ""
        if ident is not None:
            who = ", user: %s, group: %s" % (ident[0], ident[2])
        common = ("env: {GREETING: hello}, inherit_env: [SPAWND_E2E_INHERITED], "
                  "cwd: %s, umask: \"027\"%s" % (h.yaml_str(cwd), who))
        targets = {"who_" + m: "{function: builtin:whoami, start_method: %s, %s}" % (m, common)
                   for m in METHODS}
        # Pre-started children (SPEC §12) are set up ahead, as these.
        for m in ("fork", "forkserver"):
            targets["who_pre_" + m] = ("{function: builtin:whoami, start_method: %s, prestart: 1, %s}"
                                       % (m, common))
        targets["who_exec"] = "{exec: [/bin/sh, -c, %s], %s}" % (h.yaml_str(SH_REPORT), common)
        return h.minimal_config(targets)

    def test_children_get_only_what_the_target_says(self):
        cwd = tempfile.mkdtemp(prefix="spawnd-hardening-", dir="/tmp")
        os.chmod(cwd, 0o755)
        self.addCleanup(os.rmdir, cwd)
        ident = identity() if ROOT else None
        env = {"SPAWND_E2E_INHERITED": "passed", "SPAWND_E2E_SECRET": "leak"}
        if ident is not None:
            # The zygote and the spawn worker exec spawnd-worker as that user:
            # a copy it can reach (bazel's output tree is under root's home).
            bindir = tempfile.mkdtemp(prefix="spawnd-hardening-bin-", dir="/tmp")
            os.chmod(bindir, 0o755)
            worker = os.path.join(bindir, "spawnd-worker")
            shutil.copy(os.path.join(os.path.dirname(h.spawnd_binary()), "spawnd-worker"), worker)
            os.chmod(worker, 0o755)
            self.addCleanup(shutil.rmtree, bindir, True)
            env["SPAWND_WORKER"] = worker
        s = self.server(self.config(cwd, ident), env=env)
        for target in ["who_" + m for m in METHODS] + ["who_pre_fork", "who_pre_forkserver", "who_exec"]:
            p = s.run(target)
            self.assertState(p, "SUCCEEDED", target)
            # A function reports in its result, the exec target on stdout.
            r = parse(p.stdout_tail if target == "who_exec" else p.result)
            env = dict(r["env"])
            if target == "who_exec":
                # The shell adds its own (PWD, SHLVL, _): nothing of spawnd's.
                for k in ("PWD", "SHLVL", "_", "OLDPWD"):
                    env.pop(k, None)
            self.assertEqual(env, {"GREETING": "hello", "SPAWND_E2E_INHERITED": "passed"},
                             "%s: %r" % (target, r["env"]))
            self.assertEqual(r["no_new_privs"], "1", target)
            self.assertEqual(r["cwd"], cwd, target)
            self.assertEqual(r["umask"].lstrip("0"), "27", target)
            fds = sorted(int(x) for x in r["fds"].strip(",").split(",") if x)
            if target == "who_exec":
                # 0-2, and the listing's own descriptor (ls opens the directory).
                self.assertEqual(fds[:3], [0, 1, 2], target)
                self.assertLessEqual(len(fds), 4, "%s: %r" % (target, fds))
            else:
                self.assertEqual(fds, [0, 1, 2, 3], "%s: stdio and the result channel" % target)
            if ident is not None:
                name, uid, gname, gid, groups = ident
                self.assertEqual(int(r["uid"]), uid, target)
                self.assertEqual(int(r["gid"]), gid, target)
                got = sorted(set(int(g) for g in r["groups"].split(",") if g))
                self.assertEqual(got, groups, "%s: the supplementary groups of %s" % (target, name))
            else:
                self.assertEqual(int(r["uid"]), os.geteuid(), target)

    def test_args_only_with_allow_args(self):
        s = self.server(h.minimal_config({
            "fixed": "{exec: [/bin/echo, fixed]}",
            "open": "{exec: [/bin/echo], allow_args: true}",
        }))
        self.assertEqual(s.run("open", "a", "b").result, b"",
                         "echo writes stdout, not a result")
        with self.assertRaises(h.grpc.RpcError) as e:
            s.start_process("fixed", "extra")
        self.assertEqual(e.exception.code(), h.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("allow_args", e.exception.details())


if __name__ == "__main__":
    h.main()
