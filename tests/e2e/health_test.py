"""grpc.health.v1.Health (SPEC §3 "Also served on the same port", §6):
Check and Watch for the server, the service and each target; NOT_SERVING at
shutdown, when a zygote is down and when the launcher is lost; Watch streams
that end at shutdown and free their resources when cancelled."""

import os
import queue
import signal
import threading

import grpc

import spawnd_harness as h
import std_services as std

#: How long a Watch may take to report a transition.
TRANSITION_TIMEOUT = 10.0 * h.SLOW
#: Health Watch open/cancel cycles of the leak check.
CYCLES = 2000


class StreamReader:
    """Reads a server stream on a thread, so that each message has its own deadline."""

    END = object()

    def __init__(self, call):
        self.call = call
        self.q = queue.Queue()
        self.code = None
        self.details = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for msg in self.call:
                self.q.put(msg)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        self.q.put(self.END)

    def next(self, timeout=TRANSITION_TIMEOUT, what="a health message"):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no %s within %.1fs" % (what, timeout))

    def next_status(self, timeout=TRANSITION_TIMEOUT, what="a health status"):
        msg = self.next(timeout, what)
        if msg is self.END:
            raise AssertionError("the Watch ended (%s: %s) while waiting for %s"
                                 % (self.code, self.details, what))
        return std.status_name(msg)

    def end(self, timeout=TRANSITION_TIMEOUT):
        """Waits for the end of the stream; returns its status code."""
        while True:
            msg = self.next(timeout, "the end of the Watch")
            if msg is self.END:
                return self.code


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class HealthTest(h.E2ETest):

    def health(self, s):
        return std.HealthStub(s.channel)

    def test_check_known_and_unknown_names(self):
        s = self.server()
        hs = self.health(s)
        for name in ("", "spawnd.v1.ProcessService", "spawnd.target.echo", "spawnd.target.true"):
            self.assertEqual(hs.check(name), "SERVING", "Check(%r)" % name)
        for name in ("nope", "spawnd.target.nope", "spawnd.target.", "grpc.health.v1.Health"):
            self.assertRpcError(grpc.StatusCode.NOT_FOUND, hs.check, name)

    def test_watch_unknown_streams_service_unknown_and_stays_open(self):
        s = self.server()
        r = StreamReader(self.health(s).watch("spawnd.target.nope", timeout=60))
        self.assertEqual(r.next_status(), "SERVICE_UNKNOWN")
        # Requests made after it, on the same channel, are answered (a second
        # Watch's first message, a Check) while the first one still stands:
        # the server has moved on and did not end it or send it more.
        later = StreamReader(self.health(s).watch("spawnd.target.nope", timeout=60))
        self.assertEqual(later.next_status(), "SERVICE_UNKNOWN")
        self.assertEqual(self.health(s).check(""), "SERVING")
        self.assertTrue(r.call.is_active(), "a Watch never ends by itself")
        self.assertTrue(r.q.empty(), "nothing more for an unknown name")
        later.call.cancel()
        self.assertEqual(later.end(), grpc.StatusCode.CANCELLED)
        r.call.cancel()
        self.assertEqual(r.end(), grpc.StatusCode.CANCELLED)
        self.assertEqual(self.health(s).check(""), "SERVING")

    def test_watch_turns_not_serving_at_sigterm_before_processes_are_destroyed(self):
        s = self.server(h.minimal_config({
            "echo": "{function: builtin:echo}",
            "stubborn": "{function: builtin:stubborn, destroy_grace_period: 2s}",
        }))
        p = s.start_process("stubborn")
        h.wait_until(lambda: h.state(s.get(p.id)) == "RUNNING", h.RPC_TIMEOUT, "stubborn to run")
        child = s.get(p.id).pid
        hs = self.health(s)
        server = StreamReader(hs.watch("", timeout=120))
        target = StreamReader(hs.watch("spawnd.target.echo", timeout=120))
        self.assertEqual(server.next_status(), "SERVING")
        self.assertEqual(target.next_status(), "SERVING")
        os.kill(s.pid, signal.SIGTERM)
        self.assertEqual(server.next_status(what="NOT_SERVING after SIGTERM"), "NOT_SERVING")
        self.assertEqual(target.next_status(what="the target's NOT_SERVING"), "NOT_SERVING")
        # The stubborn child ignores SIGTERM and has a 2 s grace: shutdown is
        # still going on, and a Check on a new connection says so too.
        self.assertTrue(h.is_alive(child), "NOT_SERVING must come before processes are destroyed")
        self.assertIsNone(s.proc.poll())
        with grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            self.assertEqual(std.HealthStub(ch).check(""), "NOT_SERVING")
        # Then the Watches end (the server must be able to stop) with
        # UNAVAILABLE, and spawnd exits 0.
        self.assertEqual(server.end(timeout=h.STOP_TIMEOUT), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(target.end(timeout=h.STOP_TIMEOUT), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(s.wait_exit(h.STOP_TIMEOUT), 0)


    def test_target_not_serving_while_its_zygote_is_down(self):
        s = self.server(h.minimal_config({
            "sleep": "{function: builtin:sleep, start_method: forkserver, zygote_start: boot}",
        }))
        r = StreamReader(self.health(s).watch("spawnd.target.sleep", timeout=120))
        # At boot the zygote may still be starting: wait for SERVING.
        first = r.next_status()
        if first != "SERVING":
            self.assertEqual(first, "NOT_SERVING")
            self.assertEqual(r.next_status(what="SERVING once the zygote is up"), "SERVING")
        z = s.zygote_pid("sleep")
        os.kill(z, signal.SIGKILL)
        self.assertEqual(r.next_status(what="NOT_SERVING after the zygote died"), "NOT_SERVING")
        self.assertEqual(r.next_status(what="SERVING once the zygote is back"), "SERVING")
        self.assertNotEqual(s.zygote_pid("sleep"), z)
        self.assertEqual(self.health(s).check("spawnd.target.sleep"), "SERVING")
        self.assertEqual(self.health(s).check(""), "SERVING", "a zygote is not the server")
        r.call.cancel()

    def test_launcher_lost_turns_server_not_serving_then_spawnd_exits_nonzero(self):
        s = self.server(expect_status="nonzero")
        r = StreamReader(self.health(s).watch("", timeout=120))
        self.assertEqual(r.next_status(), "SERVING")
        os.kill(s.launcher_pid(), signal.SIGKILL)
        self.assertEqual(r.next_status(what="NOT_SERVING after the launcher died"), "NOT_SERVING")
        self.assertEqual(r.end(timeout=h.STOP_TIMEOUT), grpc.StatusCode.UNAVAILABLE)
        self.assertNotEqual(s.wait_exit(h.STOP_TIMEOUT), 0)

    def test_watch_open_cancel_cycles_leave_rss_and_fds_flat(self):
        s = self.server()
        hs = self.health(s)

        def cycles(n):
            for i in range(n):
                call = hs.watch("" if i % 2 else "spawnd.target.echo", timeout=30)
                self.assertEqual(std.status_name(next(call)), "SERVING")
                call.cancel()

        cycles(200)  # warm up allocator arenas and gRPC's caches
        # A round trip after the cancellations, before the baseline.
        self.assertEqual(hs.check(""), "SERVING")
        rss0, fds0 = vm_rss_kib(s.pid), fd_count(s.pid)
        cycles(CYCLES)
        # Cancellations reach the server asynchronously: give them a moment.
        fd_slack, rss_slack = 4, 3 * 1024

        def settled():
            return fd_count(s.pid) <= fds0 + fd_slack
        h.wait_until(settled, 5.0 * h.SLOW, "spawnd's fd count to settle (was %d, now %d)"
                     % (fds0, fd_count(s.pid)))
        rss1 = vm_rss_kib(s.pid)
        # ASan's quarantine keeps freed memory resident on purpose: RSS says
        # nothing there (its leak checker at exit does the job instead).
        if not h.SANITIZED:
            self.assertLess(rss1 - rss0, rss_slack,
                            "VmRSS grew from %d to %d KiB over %d Watch cycles" % (rss0, rss1, CYCLES))
        self.assertEqual(hs.check(""), "SERVING")


if __name__ == "__main__":
    h.main()
