#!/usr/bin/python3
"""A many-watchers run against spawnd: 1,000 concurrent Watch streams.

    /usr/bin/python3 tools/watchers.py [--watchers 1000] [--watch-all 50] [--channels 10] [--json]
    make watchers                  (builds spawnd first)

It starts its own spawnd (--spawnd, default bazel-bin/service/front/spawnd) on
127.0.0.1:0, starts --sleeps long-running `sleep` processes, then opens WATCHERS
streams (grpc.aio, one event loop): single-process Watches spread over the
sleeps, and --watch-all of them Watch-all (selector: this run's label). Each must
receive its SNAPSHOT (a watch-all one per sleep). With all of them open it
destroys --fanout sleeps: each of their watchers must get the terminal event
and end OK, each watch-all must see those terminal events. Then it cancels
every stream; opens and cancels them again (--rounds), and closes the channels.

It prints the front's VmRSS, open fds and threads (and the launcher's) at each
step: idle (only the tool's control connection), before (the watch channels
connected, no stream), open (all WATCHERS open), cancelled (all cancelled,
channels still connected), closed (channels closed) — with the RSS per watcher.
Exit status 1 if a watcher missed its SNAPSHOT or a fan-out event, if the
front's descriptors did not come back, or spawnd did not stop cleanly.

Connections: Python channels to the same address share one subchannel, hence
one TCP connection, unless ("grpc.use_local_subchannel_pool", 1); every channel
here sets it, and the watchers are spread over --channels of them (default 10:
100 streams per HTTP/2 connection, like ten clients each watching 100
processes; --channels 1 puts all on one connection, --channels 1000 one each).
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import soaklib  # noqa: E402
from soaklib import h  # noqa: E402

import grpc  # noqa: E402
import grpc.aio  # noqa: E402


class Watcher:
    __slots__ = ("index", "target_id", "call", "events", "snapshot", "snapshots", "terminal_ids",
                 "ended", "status", "first_type")

    def __init__(self, index, target_id):
        self.index = index
        self.target_id = target_id  # "" for watch-all
        self.call = None
        self.events = 0
        self.snapshot = asyncio.Event()  # set when its SNAPSHOT(s) arrived
        self.snapshots = set()
        self.terminal_ids = set()
        self.ended = asyncio.Event()
        self.status = None
        self.first_type = None


async def read(w, want_snapshots, changed):
    """Reads W's stream; sets w.snapshot once it has WANT_SNAPSHOTS distinct ones."""
    try:
        async for ev in w.call:
            w.events += 1
            t = h.event_type(ev)
            if w.first_type is None:
                w.first_type = t
            if t == "SNAPSHOT":
                w.snapshots.add(ev.process.id)
                if len(w.snapshots) >= want_snapshots:
                    w.snapshot.set()
            elif ev.process.id and h.is_terminal(ev.process):
                w.terminal_ids.add(ev.process.id)
                changed.set()
        w.status = "OK"
    except grpc.aio.AioRpcError as e:
        w.status = e.code().name
    except asyncio.CancelledError:
        w.status = "CANCELLED"
    finally:
        w.ended.set()
        changed.set()


async def wait_all(events, timeout):
    """Waits for every asyncio.Event in EVENTS; returns how many are not set."""
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)
    except asyncio.TimeoutError:
        pass
    return sum(1 for e in events if not e.is_set())


def settled_measure(server, want_fds, timeout):
    """The measure once the front's fds are at most WANT_FDS (or TIMEOUT passed)."""
    m = soaklib.wait_for(lambda: (lambda x: x if x["front"]["fds"] <= want_fds else None)(soaklib.measure(server)),
                         timeout, interval=0.1)
    return m or soaklib.measure(server)


def open_watchers(args, stubs, sleeps, n_all, run_id, changed):
    """Opens args.watchers streams round-robin over STUBS: N_ALL watch-all, the
    rest single-process Watches spread over SLEEPS; returns (watchers, tasks)."""
    m = h.pb()
    watchers, tasks = [], []
    for i in range(args.watchers):
        is_all = i < n_all
        w = Watcher(i, "" if is_all else sleeps[i % len(sleeps)])
        req = (m.WatchRequest(label_selector={"watchers": run_id}) if is_all
               else m.WatchRequest(id=w.target_id))
        w.call = stubs[i % len(stubs)].Watch(req, timeout=3600)
        watchers.append(w)
        tasks.append(asyncio.ensure_future(read(w, len(sleeps) if is_all else 1, changed)))
    return watchers, tasks


async def run(args, server, report, problems):
    m = h.pb()
    run_id = "watchers-%d" % os.getpid()
    sleeps = [server.start_process("sleep", labels={"watchers": run_id}).id for _ in range(args.sleeps)]
    soaklib.wait_for(lambda: all(h.state(server.get(i)) == "RUNNING" for i in sleeps), 30 * h.SLOW)
    idle = soaklib.measure(server)

    opts = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(server.address, options=opts) for _ in range(args.channels)]
    for ch in channels:
        await asyncio.wait_for(ch.channel_ready(), h.RPC_TIMEOUT)
    stubs = [h.ProcessStub(ch) for ch in channels]
    # Warm-up: a few streams opened and cancelled on every channel.
    for stub in stubs:
        ws = [stub.Watch(m.WatchRequest(id=sleeps[0]), timeout=60) for _ in range(3)]
        for call in ws:
            await call.read()
            call.cancel()
    await asyncio.sleep(0)
    before = settled_measure(server, idle["front"]["fds"] + args.channels, 10)

    changed = asyncio.Event()
    n_all = min(args.watch_all, args.watchers)
    t0 = time.monotonic()
    watchers, tasks = open_watchers(args, stubs, sleeps, n_all, run_id, changed)
    missing = await wait_all([w.snapshot for w in watchers], 60 * h.SLOW)
    open_s = time.monotonic() - t0
    if missing:
        problems.append("%d of %d watchers had not received their SNAPSHOT(s) after %.0fs"
                        % (missing, len(watchers), 60 * h.SLOW))
    wrong_first = [w.index for w in watchers if w.first_type not in (None, "SNAPSHOT")]
    if wrong_first:
        problems.append("%d watchers began with another event than SNAPSHOT (e.g. #%d)" % (len(wrong_first), wrong_first[0]))
    # Let the front finish whatever the burst queued before measuring.
    await asyncio.sleep(0.5)
    opened = soaklib.measure(server)
    loop = asyncio.get_running_loop()
    t1 = time.monotonic()
    rpc_ms = []
    for _ in range(20):
        a = time.monotonic()
        await loop.run_in_executor(None, server.get, sleeps[-1])
        rpc_ms.append((time.monotonic() - a) * 1000)
    rpc_ms.sort()

    # Fan-out: destroy some sleeps; their watchers end OK after the terminal
    # event; every watch-all sees the terminal events.
    victims = sleeps[:args.fanout]
    t1 = time.monotonic()
    for v in victims:
        await loop.run_in_executor(None, server.destroy, v)
    vset = set(victims)
    single = [w for w in watchers if w.target_id in vset]
    alls = [w for w in watchers if not w.target_id]
    end = time.monotonic() + 60 * h.SLOW
    while time.monotonic() < end:
        if all(w.ended.is_set() for w in single) and all(vset <= w.terminal_ids for w in alls):
            break
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), max(0.01, end - time.monotonic()))
        except asyncio.TimeoutError:
            break
    fanout_s = time.monotonic() - t1
    bad_single = [w for w in single if w.status != "OK" or not (w.terminal_ids >= {w.target_id})]
    bad_all = [w for w in alls if not vset <= w.terminal_ids]
    if bad_single:
        problems.append("%d of the %d watchers of destroyed sleeps did not get the terminal event and OK (e.g. status %s)"
                        % (len(bad_single), len(single), bad_single[0].status))
    if bad_all:
        problems.append("%d of %d watch-all streams missed terminal events of destroyed sleeps" % (len(bad_all), len(alls)))
    early = [w for w in watchers if w.ended.is_set() and w not in single]
    if early:
        problems.append("%d watchers ended before being cancelled (e.g. #%d: %s)" % (len(early), early[0].index, early[0].status))

    # Cancel every stream; then close the channels.
    t2 = time.monotonic()
    for w in watchers:
        w.call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cancel_s = time.monotonic() - t2
    cancelled = settled_measure(server, before["front"]["fds"], 10)
    # More rounds on the sleeps left: the same number of streams opened and
    # cancelled again must not take more memory than the first round did.
    rounds = [{"round": 1, "open_rss_kib": opened["front"]["rss_kib"],
               "cancelled_rss_kib": cancelled["front"]["rss_kib"]}]
    left = sleeps[args.fanout:]
    for r in range(2, args.rounds + 1):
        if not left:
            break
        ws, ts = open_watchers(args, stubs, left, n_all, run_id, changed)
        miss = await wait_all([w.snapshot for w in ws], 60 * h.SLOW)
        if miss:
            problems.append("round %d: %d of %d watchers had not received their SNAPSHOT(s)" % (r, miss, len(ws)))
        await asyncio.sleep(0.5)
        o = soaklib.measure(server)
        for w in ws:
            w.call.cancel()
        await asyncio.gather(*ts, return_exceptions=True)
        c = settled_measure(server, before["front"]["fds"], 10)
        rounds.append({"round": r, "open_rss_kib": o["front"]["rss_kib"], "cancelled_rss_kib": c["front"]["rss_kib"],
                       "open_fds": o["front"]["fds"], "open_threads": o["front"]["threads"]})
    for ch in channels:
        await ch.close()
    per_watcher = (opened["front"]["rss_kib"] - before["front"]["rss_kib"]) / max(1, len(watchers))
    report.update({
        "watchers": len(watchers), "watch_all": n_all, "single": len(watchers) - n_all,
        "sleeps": len(sleeps), "channels": args.channels,
        "streams_per_channel": round(len(watchers) / args.channels, 1),
        "open_seconds": round(open_s, 2), "fanout_seconds": round(fanout_s, 3),
        "fanout_destroyed": len(victims), "fanout_single_watchers": len(single),
        "cancel_seconds": round(cancel_s, 2),
        "getprocess_ms_with_all_open": {"p50": round(rpc_ms[len(rpc_ms) // 2], 2), "max": round(rpc_ms[-1], 2)},
        "rss_kib_per_watcher": round(per_watcher, 2),
        # Pages calloc'd fresh are not resident until touched; freed ones reused
        # by a later round are (calloc zeroes them): the highest round is the cost.
        "rss_kib_per_watcher_steady": round((max(x["open_rss_kib"] for x in rounds) - before["front"]["rss_kib"])
                                            / max(1, len(watchers)), 2),
        "idle": idle, "before": before, "open": opened, "cancelled": cancelled, "rounds": rounds,
    })
    return sleeps[args.fanout:]


def finish(args, server, report, problems, sleeps):
    """After the event loop ended (grpc.aio lets a closed channel's connection
    go only then): the closed measure; destroys the sleeps left."""
    idle = report["idle"]
    closed = settled_measure(server, idle["front"]["fds"], 30 * h.SLOW)
    report["closed"] = closed
    if closed["front"]["fds"] > idle["front"]["fds"] + args.fd_slack:
        problems.append("front fds did not come back: %d idle, %d after the channels closed"
                        % (idle["front"]["fds"], closed["front"]["fds"]))
    if closed["zombies"]:
        problems.append("zombies under spawnd: %s" % closed["zombie_list"])
    for v in sleeps:
        server.destroy(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--watchers", type=int, default=1000, help="concurrent Watch streams (default 1000)")
    ap.add_argument("--watch-all", type=int, default=50, help="how many of them are Watch-all (default 50)")
    ap.add_argument("--sleeps", type=int, default=50, help="long-running sleeps watched (default 50)")
    ap.add_argument("--fanout", type=int, default=5, help="sleeps destroyed with every watcher open (default 5)")
    ap.add_argument("--channels", type=int, default=10, help="connections the watchers are spread over (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="times the watchers are opened and cancelled (default 3)")
    ap.add_argument("--spawnd", default=None, help="spawnd binary (default %s)" % soaklib.DEFAULT_SPAWND)
    ap.add_argument("--fd-slack", type=int, default=2, help="front fds allowed above idle at the end (default 2)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args()
    if args.sleeps < 1 or args.channels < 1 or not 0 <= args.fanout <= args.sleeps:
        sys.exit("need --sleeps >= 1, --channels >= 1 and 0 <= --fanout <= --sleeps")
    binary = soaklib.use_spawnd(args.spawnd)
    config = h.minimal_config({"sleep": "{function: builtin:sleep, destroy_grace_period: 1s}"},
                              extra="max_running: %d" % (args.sleeps + 16))
    report = {"spawnd": binary}
    problems = []
    server = h.Server(config)
    server.start()
    try:
        if not args.json:
            print("watchers: spawnd %s (pid %d) on %s; %d watchers (%d watch-all) on %d sleeps over %d channels"
                  % (binary, server.pid, server.address, args.watchers, min(args.watch_all, args.watchers),
                     args.sleeps, args.channels), flush=True)
        left = asyncio.run(run(args, server, report, problems))
        finish(args, server, report, problems, left)
    except Exception as e:  # report what was measured, and this
        problems.append("aborted: %s: %s" % (type(e).__name__, e))
    finally:
        try:
            server.stop()
        except AssertionError as e:
            problems.append("spawnd did not stop cleanly: %s" % str(e).split("\n--- spawnd stderr")[0])
    report["problems"] = problems
    return soaklib.finish(report, args.json, print_report, problems)


def print_report(r):
    if "closed" in r:
        print("%d watchers (%d single-process on %d sleeps, %d watch-all) over %d connections, %.0f streams each "
              "(Python channels share one connection unless grpc.use_local_subchannel_pool=1; each channel here sets it)"
              % (r["watchers"], r["single"], r["sleeps"], r["watch_all"], r["channels"], r["streams_per_channel"]))
        print("  all SNAPSHOTs in %.2fs; fan-out of %d destroys to %d single watchers + %d watch-all in %.3fs; "
              "cancel in %.2fs; GetProcess with all open p50 %.2f ms max %.2f ms"
              % (r["open_seconds"], r["fanout_destroyed"], r["fanout_single_watchers"], r["watch_all"],
                 r["fanout_seconds"], r["cancel_seconds"], r["getprocess_ms_with_all_open"]["p50"],
                 r["getprocess_ms_with_all_open"]["max"]))
        print(soaklib.format_measures([(k, r[k]) for k in ("idle", "before", "open", "cancelled", "closed")]))
        print("  front RSS per open watcher: %.2f KiB in round 1 ((open - before) / %d), %.2f KiB at the highest round "
              "(memory calloc'd fresh is resident only once touched; reused, it is zeroed, hence resident)"
              % (r["rss_kib_per_watcher"], r["watchers"], r["rss_kib_per_watcher_steady"]))
        print("  rounds of open + cancel (front VmRSS KiB): %s" % ", ".join(
            "#%d open %d cancelled %d" % (x["round"], x["open_rss_kib"], x["cancelled_rss_kib"]) for x in r["rounds"]))
    print("problems: %d" % len(r["problems"]))
    for p in r["problems"]:
        print("  " + p)
    print("watchers: %s" % ("FAILED" if r["problems"] else "OK"))


if __name__ == "__main__":
    sys.exit(main())
