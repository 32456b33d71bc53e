"""A node under attack by ovl-probe: every kind of bad peer is disconnected
and counted under the right close reason, while the node keeps serving well-
behaved peers and its existing link stays up."""

import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import OVL_PROBE, run, wait_for  # noqa: E402

PROBE_TIMEOUT_MS = 5000  # above the nodes' 1000 ms handshake timeout
NEEDS_ID = {"halfway", "hs-replay", "hello", "garbage", "replay", "reorder", "tamper"}


class Ctx:
    pass


def probe(ctx, mode, *mode_args):
    """Run ovl-probe MODE against N; return the CompletedProcess."""
    argv = [OVL_PROBE, mode] + [str(a) for a in mode_args] + ["127.0.0.1", str(ctx.n.port)]
    if mode in NEEDS_ID:
        argv.append(ctx.n.id)
    argv += ["--timeout-ms", str(PROBE_TIMEOUT_MS)]
    r = run(argv, timeout=PROBE_TIMEOUT_MS / 1000 + 10)
    print("  ovl-probe %s: exit %d: %s" % (" ".join([mode] + [str(a) for a in mode_args]),
                                          r.returncode, (r.stdout + r.stderr).strip()))
    return r


def link_opened_ms(ctx):
    """When N's link to P opened, in wall-clock ms, as N reports it."""
    rec = ctx.n.open_peers()[ctx.p.id]
    return time.time() * 1000 - rec["age_ms"]


def fixture(net):
    ctx = Ctx()
    # N listens on every transport it has (TCP first, so ctx.n.port is TCP's).
    ctx.n = net.node("n", listen="127.0.0.1:0").start()
    ctx.p = net.node("p", peers=[ctx.n]).start()
    wait_for(lambda: ctx.p.id in ctx.n.open_peers() and ctx.n.id in ctx.p.open_peers(),
             15.0, "the P<->N link to open")
    # N's link count once nothing else is connected
    ctx.base_links = wait_for(lambda: ctx.n.status()["links"] == 1 and 1, 5.0, "N links == 1")
    ctx.opened_ms = link_opened_ms(ctx)
    return ctx


def bad_mode(ctx, mode, counters, *mode_args):
    """Probe N in mode; require exit 0 and one of counters to increase."""
    before = ctx.n.status()
    r = probe(ctx, mode, *mode_args)
    assert r.returncode == 0, "ovl-probe %s: exit %d, want 0 (peer closed): %s %s" % (
        mode, r.returncode, r.stdout, r.stderr)

    def counted():
        st = ctx.n.status()
        return [c for c in counters if st[c] > before[c]]

    got = wait_for(counted, 5.0, "one of %s to increase after %s" % (counters, mode))
    assert ctx.n.alive(), "N died after %s" % mode
    return got


def test_hello_before(ctx):
    r = probe(ctx, "hello")
    assert r.returncode == 0 and "pong" in r.stdout, "hello: exit %d: %s %s" % (
        r.returncode, r.stdout, r.stderr)


def test_random(ctx):
    bad_mode(ctx, "random", ["closed_oversized", "closed_hs_malformed", "closed_bad_frame"], 1048576)


def test_halfway(ctx):
    bad_mode(ctx, "halfway", ["closed_hs_timeout"])


def test_oversize(ctx):
    bad_mode(ctx, "oversize", ["closed_oversized"])


def test_garbage(ctx):
    bad_mode(ctx, "garbage", ["closed_tampered"])


def test_replay(ctx):
    bad_mode(ctx, "replay", ["closed_replay"])


def test_reorder(ctx):
    bad_mode(ctx, "reorder", ["closed_reorder"])


def test_hs_replay(ctx):
    """A recorded message 1 sent again is refused before any X25519 work."""
    before = ctx.n.status()["hs_replays"]
    bad_mode(ctx, "hs-replay", ["closed_hs_replay"])
    assert ctx.n.status()["hs_replays"] == before + 1


def test_tamper(ctx):
    bad_mode(ctx, "tamper", ["closed_tampered"])


def test_hello_after(ctx):
    test_hello_before(ctx)


def test_quic_garbage(ctx):
    """Random datagrams at N's QUIC listener: each is counted, none leaves a
    connection behind, N keeps going."""
    quic = [u for u in ctx.n.status()["listen"] if u.startswith("quic://")]
    if not quic:
        raise ovltest.Skip("this ovld has no QUIC")
    port = int(quic[0].rsplit(":", 1)[1])
    before = ctx.n.status()
    rng = random.Random(7)
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(300):
            size = rng.choice((1, 20, 60, 300, 1200, 1400, 2500))
            data = bytearray(rng.randbytes(size))
            data[0] = rng.choice((0x00, 0x40, 0xc0, 0xe0))
            s.sendto(bytes(data), ("127.0.0.1", port))
            sent += 1
            if i % 50 == 49:  # let N keep up: the socket buffer is finite
                wait_for(lambda: ctx.n.status()["quic_datagrams"] - before["quic_datagrams"]
                         >= sent, 5.0, "N to count %d datagrams" % sent)
    st = ctx.n.status()
    delta = {k: st[k] - before[k] for k in ("quic_datagrams", "quic_dropped", "quic_retries",
                                            "quic_resets", "quic_vneg", "links_accepted")}
    print("  %r" % delta)
    assert delta["quic_datagrams"] == sent, delta
    assert delta["quic_dropped"] + delta["quic_retries"] + delta["quic_resets"] \
        + delta["quic_vneg"] == sent, delta
    assert delta["links_accepted"] == 0, delta
    assert ctx.n.alive(), "N died"


def test_survivors(ctx):
    assert ctx.n.alive(), "N is not running"
    assert ctx.p.alive(), "P is not running"
    links = ctx.n.open_peers()
    assert ctx.p.id in links, "N lost its link to P: %r" % links
    drift = abs(link_opened_ms(ctx) - ctx.opened_ms)
    assert drift < 1000, "the P<->N link was re-established (opened %d ms apart)" % drift
    st_p = ctx.p.status()
    assert st_p["links_dialed"] == 1 and st_p["handshakes_ok"] == 1, \
        "P redialed N: %r" % st_p
    wait_for(lambda: ctx.n.status()["links"] == ctx.base_links, 10.0,
             "N's link count to return to %d (leaked links?)" % ctx.base_links)
    st = ctx.n.status()
    assert st["links_open"] == 1, st
    # every probe was an inbound link that N accepted
    assert st["links_accepted"] >= 10, st


if __name__ == "__main__":
    ovltest.run_tests("test_hostile", [
        test_hello_before,
        test_random,
        test_halfway,
        test_oversize,
        test_garbage,
        test_replay,
        test_reorder,
        test_hs_replay,
        test_tamper,
        test_hello_after,
        test_quic_garbage,
        test_survivors,
    ], fixture=fixture)
