"""No zombies, no descriptor leaks, no stalls (issue 3): 2,000 sequential starts
leave spawnd and its launcher with the descriptors they had; a child writing 64
MiB of output and 16 MiB of result with nobody watching completes."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402

MIB = 1024 * 1024
SANITIZED = os.environ.get("SPAWND_SANITIZED") == "1"


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def zombies_of(pid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = h.proc_info(int(name))
            if info is not None and info.ppid == pid and info.state == "Z":
                out.append(info)
    return out


class LeakTest(h.E2ETest):

    def test_2000_sequential_starts_leave_nothing(self):
        s = self.server(h.minimal_config({"noop": "{function: builtin:noop}",
                                          "true": '{exec: ["/bin/true"]}'}))
        launcher = s.launcher_pid()
        # Warm up (first calls allocate gRPC and registry structures).
        for _ in range(20):
            s.run("noop")
        before = (fd_count(s.pid), fd_count(launcher))
        n = 500 if SANITIZED else 2000
        for i in range(n):
            p = s.run("noop" if i % 2 else "true")
            self.assertState(p, "SUCCEEDED")
        after = (fd_count(s.pid), fd_count(launcher))
        self.assertEqual(after[1], before[1], "the launcher's descriptors after %d starts" % n)
        self.assertLessEqual(abs(after[0] - before[0]), 2, "spawnd's descriptors after %d starts" % n)
        self.assertEqual(zombies_of(launcher), [], "no zombie under the launcher")
        self.assertEqual(zombies_of(s.pid), [], "no zombie under spawnd")
        s.wait_nothing_spawned(what="every child to be gone")

    def test_big_output_and_result_without_watcher(self):
        s = self.server(h.minimal_config({"spew": "{function: builtin:spew, max_result_bytes: 32MiB}"}))
        p = s.start_process("spew", "stdout=%d" % (64 * MIB), "stderr=%d" % MIB, "result=%d" % (16 * MIB))
        # The terminal event carries the 16 MiB result: a client must accept
        # messages that large (gRPC's default limit is 4 MiB).
        ch = grpc.insecure_channel(s.address, options=[("grpc.max_receive_message_length", 64 * MIB)])
        try:
            stub = h.ProcessStub(ch)
            events = h.drain(stub.Watch(h.pb().WatchRequest(id=p.id), timeout=120))
            self.assertState(events[-1].process, "SUCCEEDED")
            full = stub.GetProcess(h.pb().GetProcessRequest(id=p.id), timeout=h.RPC_TIMEOUT)
        finally:
            ch.close()
        self.assertEqual(len(full.result), 16 * MIB)
        # It did not fit: the first and the last half of max_output_bytes.
        self.assertEqual((len(full.stdout_head), len(full.stdout_tail)), (MIB // 2, MIB // 2))
        self.assertEqual(full.stdout_bytes, 64 * MIB)
        self.assertEqual((len(full.stderr_head), len(full.stderr_tail)), (0, MIB), "1 MiB fits")
        self.assertTrue(full.output_truncated)

    def test_output_flood_and_big_starts_do_not_wedge(self):
        # The front may block sending a START (with a large input) while the
        # launcher has much output to send back: neither side may wait on the
        # other (the launcher queues its frames and keeps reading).
        import concurrent.futures
        s = self.server(h.minimal_config({"spew": "{function: builtin:spew}",
                                          "echo": "{function: builtin:echo}"},
                                         extra="max_running: 16"))
        n_spew, size = (2, 8 * MIB) if SANITIZED else (4, 32 * MIB)
        spews = [s.start_process("spew", "stdout=%d" % size) for _ in range(n_spew)]
        payload = bytes(range(256)) * 240  # 60 KiB: close to one datagram
        n = 60 if SANITIZED else 200

        def one(i):
            data = payload + str(i).encode()
            return s.run("echo", input=data, deadline=120).result == data
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            ok = list(pool.map(one, range(n)))
        self.assertTrue(all(ok), "%d of %d echoes returned their input" % (sum(ok), n))
        for p in spews:
            self.assertState(s.wait_terminal(p.id, deadline=120), "SUCCEEDED")

    def test_result_too_large(self):
        s = self.server(h.minimal_config({"spew": "{function: builtin:spew, max_result_bytes: 1MiB}"}))
        end = s.run("spew", "result=%d" % (2 * MIB), deadline=60)
        self.assertState(end, "FAILED")
        self.assertKind(end, "RESULT_TOO_LARGE")


if __name__ == "__main__":
    h.main()
