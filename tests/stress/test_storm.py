"""Garbage storm: a live testnet under hostile input keeps every promise.

A 5-relay testnet (tools/ovl-testnet). For STORM_S seconds every node's
listener is hit, STORM_PAR at a time, by ovl-probe (random bytes,
half-open handshakes, replayed messages 1, tampered cells, floods of forged
CHAIN_DELIVER fragments from an authenticated neighbour) and by raw
connections that send random bytes or nothing at all, while clientA sends
messages to clientB. Then: every node is alive, no node's resident memory
went past RSS_MAX_KB, every message clientA sent is acknowledged and
clientB holds each exactly once, and the nodes counted what they refused.
Bounded to about a minute; the storm is a fixed amount of work, the verdict
is on events.

OVL_TEST_SEED=N repeats a run's choice of attacks; the seed is printed.
"""

import os
import random
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402
from ovltest import OVL_PROBE, wait_for  # noqa: E402

RELAYS = 5
STORM_S = 20.0
STORM_PAR = 4          # probes running at once
HALF_OPEN = 40         # raw connections that never say a word, held to the end
RATE = 5               # messages per second from clientA
RSS_MAX_KB = 64 * 1024
SETTLE_S = 60.0


class Ctx:
    pass


def fixture(net):
    ctx = Ctx()
    seed = int(os.environ.get("OVL_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
    print("OVL_TEST_SEED=%d" % seed)
    ctx.rng = random.Random(seed)
    ctx.tn = ovltest.testnet(net, relays=RELAYS, clients=2, log_level="warn")
    ctx.a, ctx.b = ctx.tn["clientA"], ctx.tn["clientB"]
    ctx.targets = []
    for n in ctx.tn.nodes:
        for uri in n.status()["listen"]:
            if uri.startswith("tcp://"):
                host, port = uri[len("tcp://"):].rsplit(":", 1)
                ctx.targets.append((n, host, port))
    assert ctx.targets, "no TCP listener to attack"
    return ctx


def probe_argv(ctx):
    """One attack on a random node: an ovl-probe command line."""
    n, host, port = ctx.rng.choice(ctx.targets)
    mode = ctx.rng.choice(["random", "halfway", "hs-replay", "garbage", "replay", "tamper",
                           "deliver-flood", "oversize"])
    argv = [OVL_PROBE, mode]
    if mode == "random":
        argv.append(str(ctx.rng.randrange(1, 1 << 16)))
    elif mode == "deliver-flood":
        argv.append(str(ctx.rng.randrange(50, 2000)))
    argv += [host, port]
    if mode not in ("random", "oversize"):
        argv.append(n.id)
    return argv + ["--timeout-ms", "3000"]


def raw_conn(ctx, junk):
    """A raw TCP connection to a random node: random bytes, or silence."""
    _, host, port = ctx.rng.choice(ctx.targets)
    s = socket.create_connection((host, int(port)), timeout=5)
    if junk:
        try:
            s.sendall(os.urandom(ctx.rng.randrange(1, 4096)))
        except OSError:
            pass  # the node may close first: that is its right
    return s


def drain(ctx):
    for m in ctx.tn.ctl(ctx.b.name, "recv", "--max", "1000"):
        assert m["id"] not in ctx.got, "message %s delivered twice" % m["id"]
        ctx.got[m["id"]] = m


def rss_kb(pid):
    with open("/proc/%d/status" % pid, encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def storm(ctx):
    """Run the attacks and clientA's messages side by side for STORM_S."""
    procs, held = [], []
    t0 = time.monotonic()
    next_msg = t0
    n = 0
    while time.monotonic() - t0 < STORM_S:
        procs = [p for p in procs if p.poll() is None]
        while len(procs) < STORM_PAR:
            procs.append(subprocess.Popen(probe_argv(ctx), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            ctx.probes += 1
        if len(held) < HALF_OPEN:
            held.append(raw_conn(ctx, junk=False))
        raw_conn(ctx, junk=True).close()
        if time.monotonic() >= next_msg:
            out = ctx.tn.ctl(ctx.a.name, "send", "--to", ctx.b.id, "storm %05d" % n)
            ctx.sent.append(out["id"])
            n += 1
            next_msg += 1.0 / RATE
            drain(ctx)
        time.sleep(0.01)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for s in held:
        s.close()


def test_storm(ctx):
    tn = ctx.tn
    ctx.sent, ctx.got, ctx.probes = [], {}, 0
    before = {n.name: n.status() for n in tn.nodes}
    peak = {}
    storm(ctx)
    for n in tn.nodes:
        assert n.alive(), "%s died in the storm" % n.name
        peak[n.name] = rss_kb(n.pid)
    print("storm: %d probes, %d messages; RSS (KB): %s" % (
        ctx.probes, len(ctx.sent), " ".join("%s=%d" % kv for kv in sorted(peak.items()))))
    assert all(v < RSS_MAX_KB for v in peak.values()), peak

    def settled():
        drain(ctx)
        st = ctx.a.status()
        assert st["client_messages_failed"] == 0, "messages failed"
        return st["client_send_queued"] == 0 and len(ctx.got) >= len(ctx.sent)

    wait_for(settled, SETTLE_S, "every message acknowledged and received")
    assert set(ctx.got) == set(ctx.sent), "lost or unexpected messages"
    refused = 0
    for n in tn.nodes:
        st = n.status()
        refused += sum(st[k] - before[n.name].get(k, 0) for k in st
                       if k.startswith("closed_") and k != "closed_shutdown"
                       and isinstance(st[k], int))
        refused += st["hs_replays"] - before[n.name]["hs_replays"]
    print("refused and counted: %d" % refused)
    assert refused > 0, "the storm was refused nowhere: test too weak"


if __name__ == "__main__":
    ovltest.run_tests("test_storm", [test_storm], fixture=fixture)
