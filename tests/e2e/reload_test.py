"""SIGHUP reloads the config without dropping a process (issue 9 item 4,
SPEC §5): targets added, changed and removed for new starts; running and
pending processes keep the settings they started with; a changed forkserver
target gets a new zygote and the old one goes when its children are gone;
settings that need a restart are refused (logged) while the rest applies;
an invalid file changes nothing and is logged with file:line:column."""

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402
import std_services as std  # noqa: E402

BEFORE = {
    "echo": "{function: builtin:echo}",
    "sleeper": "{function: builtin:sleep}",
    "old": "{function: builtin:sleep}",
    "zf": "{function: builtin:sleep, start_method: forkserver, zygote_start: boot}",
}

AFTER = {
    "echo": "{function: builtin:echo}",
    # Changed: new starts time out; the running one keeps no timeout.
    "sleeper": "{function: builtin:sleep, timeout: 300ms}",
    # "old" removed; "fresh" added.
    "fresh": "{function: builtin:echo, description: \"added by a reload\"}",
    # Changed: a new zygote.
    "zf": "{function: builtin:sleep, start_method: forkserver, zygote_start: boot, "
          "description: v2}",
}


def reload_records(s):
    return [r for r in s.log_records() if r.get("msg") == "SIGHUP: config reloaded"]


def zygotes(s, target):
    """Pids of the launcher's children named z:TARGET (its zygotes)."""
    launcher = s.launcher_pid()
    out = []
    for pid in h.descendants(launcher):
        info = h.proc_info(pid)
        if info is not None and info.ppid == launcher and info.comm == ("z:" + target)[:15]:
            out.append(pid)
    return sorted(out)


class ReloadTest(h.E2ETest):

    def rewrite(self, s, text):
        with open(s.config_path, "w") as f:
            f.write(text)

    def sighup(self, s, expect_reloads=None):
        """Sends SIGHUP and waits for the reload's summary line; returns it."""
        n = len(reload_records(s)) if expect_reloads is None else expect_reloads - 1
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: len(reload_records(s)) > n, h.RPC_TIMEOUT, "the reload")
        return reload_records(s)[n]

    def targets(self, s):
        return {t.name: t for t in s.stub.ListTargets(h.pb().ListTargetsRequest(),
                                                       timeout=h.RPC_TIMEOUT).targets}

    def test_add_change_remove(self):
        s = self.server(h.minimal_config(BEFORE))
        # Long enough to outlive the new 300 ms timeout by far.
        keep = s.start_process("sleeper", "1500")
        gone = s.start_process("old", "800")
        self.rewrite(s, h.minimal_config(AFTER))
        rec = self.sighup(s)
        self.assertEqual((rec["added"], rec["changed"], rec["removed"], rec["unchanged"]),
                         (1, 2, 1, 1), rec)
        msgs = {(r.get("msg", "").split(":")[0], r.get("target")) for r in s.log_records()}
        for m in (("target added", "fresh"), ("target changed", "sleeper"),
                  ("target changed", "zf"), ("target removed", "old")):
            self.assertIn(m, msgs)
        # ListTargets and health show the new set (once the launcher says it
        # prepared the new versions).
        health = std.HealthStub(s.channel)
        h.wait_until(lambda: health.check("spawnd.target.fresh") == "SERVING", h.RPC_TIMEOUT,
                     "fresh to be SERVING")
        ts = self.targets(s)
        self.assertEqual(sorted(ts), ["echo", "fresh", "sleeper", "zf"])
        self.assertEqual(ts["fresh"].description, "added by a reload")
        self.assertEqual(ts["sleeper"].limits.timeout.ToMilliseconds(), 300)
        self.assertEqual(ts["sleeper"].running, 1)  # the old version's process
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, health.check, "spawnd.target.old")
        self.assertRpcError(grpc.StatusCode.NOT_FOUND, s.start_process, "old", "1")
        self.assertEqual(s.run("fresh", "hi").result, b"hi")
        # New starts get the new limits...
        p = s.run("sleeper", "5000")
        self.assertState(p, "FAILED")
        self.assertKind(p, "TIMEOUT")
        # ... while the processes started before keep theirs and end normally.
        for pid in (keep.id, gone.id):
            self.assertState(s.wait_terminal(pid), "SUCCEEDED")

    def test_changed_forkserver_target_gets_a_new_zygote(self):
        s = self.server(h.minimal_config(BEFORE))
        first = h.wait_until(lambda: zygotes(s, "zf") or None, h.RPC_TIMEOUT, "zf's zygote")
        self.assertEqual(len(first), 1)
        running = s.start_process("zf", "1500")
        self.assertEqual(h.proc_info(running.pid).ppid, first[0])
        self.rewrite(s, h.minimal_config(AFTER))
        self.sighup(s)
        both = h.wait_until(lambda: (lambda z: z if len(z) == 2 else None)(zygotes(s, "zf")),
                            h.RPC_TIMEOUT, "a second zygote for zf")
        new = [z for z in both if z != first[0]][0]
        p = s.start_process("zf", "10")
        self.assertEqual(h.proc_info(p.pid).ppid, new, "a new start forks from the new zygote")
        self.assertState(s.wait_terminal(p.id), "SUCCEEDED")
        # The old zygote is retired once its last child is gone.
        self.assertState(s.wait_terminal(running.id), "SUCCEEDED")
        h.wait_gone([first[0]], what="the old zygote to be retired")
        self.assertEqual(zygotes(s, "zf"), [new])

    def test_pending_process_keeps_its_settings(self):
        cfg = h.minimal_config({"one": "{function: builtin:sleep, max_concurrent: 1}"})
        s = self.server(cfg)
        first = s.start_process("one", "700")
        queued = s.start_process("one", "500")
        self.assertState(queued, "PENDING")
        self.rewrite(s, h.minimal_config({"one": "{function: builtin:sleep, max_concurrent: 1, "
                                                 "timeout: 100ms}"}))
        self.sighup(s)
        # The queued one started under the old settings: no timeout.
        self.assertState(s.wait_terminal(first.id), "SUCCEEDED")
        self.assertState(s.wait_terminal(queued.id), "SUCCEEDED")
        p = s.run("one", "2000")
        self.assertKind(p, "TIMEOUT")

    def test_invalid_file_changes_nothing(self):
        s = self.server(h.minimal_config(BEFORE))
        self.rewrite(s, h.minimal_config(AFTER) + "  bad: {function: builtin:echo, nosuchkey: 1}\n")
        os.kill(s.pid, signal.SIGHUP)
        rec = h.wait_until(lambda: next((r for r in s.log_records()
                                         if r.get("msg", "").startswith("SIGHUP: the config does not load")),
                                        None), h.RPC_TIMEOUT, "the failed reload")
        self.assertRegex(rec["error"], r"spawnd\.yaml:\d+:\d+: targets\.bad\.nosuchkey")
        self.assertEqual(sorted(self.targets(s)), sorted(BEFORE))
        self.assertEqual(reload_records(s), [])
        self.assertEqual(s.run("old", "1").result, b"")
        # A good file later applies.
        self.rewrite(s, h.minimal_config(AFTER))
        self.assertEqual(self.sighup(s)["added"], 1)

    def test_settings_needing_a_restart_are_refused_the_rest_applies(self):
        s = self.server(h.minimal_config(BEFORE))
        store = os.path.join(os.path.dirname(s.config_path), "records.db")
        self.rewrite(s, h.minimal_config(dict(AFTER), extra="max_request_bytes: 1MiB\n"
                                         "store: {path: %s}" % h.yaml_str(store)).replace(
            'listen: ["127.0.0.1:0"]', 'listen: ["127.0.0.1:1"]'))
        rec = self.sighup(s)
        self.assertEqual(rec["needs_restart"], 3)
        refused = {r.get("key") for r in s.log_records()
                   if r.get("msg", "").startswith("SIGHUP: this setting needs a restart")}
        self.assertEqual(refused, {"listen", "max_request_bytes", "store"})
        self.assertFalse(os.path.exists(store), "a store a reload names is not opened")
        # Still served where it was; the targets changed.
        self.assertIn("fresh", self.targets(s))
        self.assertEqual(std.HealthStub(s.channel).check(""), "SERVING")

    def test_health_watch_follows_the_reload(self):
        s = self.server(h.minimal_config(BEFORE))
        health = std.HealthStub(s.channel)
        fresh = health.watch("spawnd.target.fresh")
        old = health.watch("spawnd.target.old")
        self.assertEqual(std.status_name(next(fresh)), "SERVICE_UNKNOWN")
        self.assertEqual(std.status_name(next(old)), "SERVING")
        self.rewrite(s, h.minimal_config(AFTER))
        self.sighup(s)
        self.assertEqual(std.status_name(next(old)), "SERVICE_UNKNOWN")
        seen = std.status_name(next(fresh))
        if seen == "NOT_SERVING":  # being prepared by the launcher
            seen = std.status_name(next(fresh))
        self.assertEqual(seen, "SERVING")
        fresh.cancel()
        old.cancel()

    def test_limits_and_log_level_apply(self):
        cfg = h.minimal_config({"s": "{function: builtin:sleep}"}, extra="max_running: 1")
        s = self.server(cfg)
        a = s.start_process("s")  # forever: destroyed at the end
        b = s.start_process("s", "400")
        self.assertState(b, "PENDING")
        self.rewrite(s, h.minimal_config({"s": "{function: builtin:sleep}"},
                                         extra="max_running: 2").replace("level: info", "level: debug"))
        self.sighup(s)
        # The higher max_running lets the queued one start before A ends.
        h.wait_until(lambda: h.state(s.get(b.id)) == "RUNNING" or None, h.RPC_TIMEOUT,
                     "the queued process to start")
        self.assertEqual(h.state(s.get(a.id)), "RUNNING")
        self.assertState(s.wait_terminal(b.id), "SUCCEEDED")
        self.assertState(s.destroy(a.id, wait=True), "CANCELED")
        # log.level debug: debug lines now (the launcher's too).
        s.run("s", "1")
        h.wait_until(lambda: any(r.get("level") == "debug" for r in s.log_records()) or None,
                     h.RPC_TIMEOUT, "a debug line")

    def test_reload_storm_under_load(self):
        """Reloads back to back, alternating two configs, while clients start
        processes of every target: every process ends as it should, nothing
        is left behind, and the zygotes of old versions go."""
        s = self.server(h.minimal_config(BEFORE))
        stop = threading.Event()
        errors, done = [], []

        def client(target, *args):
            while not stop.is_set():
                try:
                    p = s.run(target, *args)
                    if h.state(p) != "SUCCEEDED":
                        errors.append(h.show(p))
                    done.append(p.id)
                except Exception as e:  # NOT_FOUND while "old" is removed is expected
                    if "NOT_FOUND" not in str(e):
                        errors.append(repr(e))
        threads = [threading.Thread(target=client, args=a, daemon=True)
                   for a in (("echo", "x"), ("zf", "5"), ("old", "5"), ("sleeper", "5"))]
        for t in threads:
            t.start()
        for i in range(40):
            self.rewrite(s, h.minimal_config(AFTER if i % 2 == 0 else BEFORE))
            self.sighup(s, expect_reloads=i + 1)
        stop.set()
        for t in threads:
            t.join(h.RPC_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertGreater(len(done), 40)
        # Back on BEFORE: one zygote of zf, no idle versions left behind.
        h.wait_until(lambda: len(zygotes(s, "zf")) == 1, h.RPC_TIMEOUT, "one zygote of zf")
        self.assertEqual(sorted(self.targets(s)), sorted(BEFORE))


if __name__ == "__main__":
    h.main()
