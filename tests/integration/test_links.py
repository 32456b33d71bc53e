"""Links between real ovld processes: who is linked to whom, with which
identities and suites, and that a wrong expected key never yields a link."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import SUITES, wait_for  # noqa: E402


def wait_open(node, want_ids, timeout=15.0):
    """Wait until node's open links are exactly to want_ids; return them."""
    want = set(want_ids)

    def exact():
        links = node.open_peers()
        return links if set(links) == want else None

    return wait_for(exact, timeout, "%s to have open links to exactly %s" % (node.name, sorted(want)))


def cpu_has_aes():
    """libsodium offers AES-256-GCM only with AES-NI and PCLMUL."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split()
                    return "aes" in flags and "pclmulqdq" in flags
    except OSError:
        pass
    return False


def three_nodes(net):
    c = net.node("c").start()
    b = net.node("b", peers=[c]).start()
    a = net.node("a", peers=[b, c]).start()
    return a, b, c


def test_three_nodes_link_up(net):
    a, b, c = three_nodes(net)
    want = {a: {b.id, c.id}, b: {a.id, c.id}, c: {a.id, b.id}}
    for n, ids in want.items():
        wait_open(n, ids)

    # direction and name seen from each side: (node, peer) -> (dir, name)
    expect = {
        (a, b): ("out", "b"), (a, c): ("out", "c"),
        (b, a): ("in", ""), (b, c): ("out", "c"),
        (c, a): ("in", ""), (c, b): ("in", ""),
    }
    for n, ids in want.items():
        recs = n.peers()
        got = sorted(p["peer"] for p in recs)
        assert got == sorted(ids), "%s peers: %s, want %s" % (n.name, got, sorted(ids))
        for p in recs:
            peer = next(m for m in want if m.id == p["peer"])
            assert p["state"] == "open", "%s -> %s: %r" % (n.name, peer.name, p)
            assert p["suite"] in SUITES, "%s -> %s: suite %r" % (n.name, peer.name, p.get("suite"))
            d, name = expect[(n, peer)]
            assert p["direction"] == d, "%s -> %s: %r" % (n.name, peer.name, p)
            assert p["name"] == name, "%s -> %s: name %r, want %r" % (n.name, peer.name,
                                                                      p["name"], name)
            assert p["remote"].startswith("tcp://127.0.0.1:"), p
            assert isinstance(p["age_ms"], int) and p["age_ms"] >= 0, p

    # the two ends of each link agree on the suite
    for (x, y) in [(a, b), (a, c), (b, c)]:
        sx, sy = x.open_peers()[y.id]["suite"], y.open_peers()[x.id]["suite"]
        assert sx == sy, "%s-%s suites differ: %s vs %s" % (x.name, y.name, sx, sy)


def test_three_nodes_counters(net):
    a, b, c = three_nodes(net)
    for n, ids in [(a, {b.id, c.id}), (b, {a.id, c.id}), (c, {a.id, b.id})]:
        wait_open(n, ids)
    # node: (dialed, accepted, configured peers); every node made 2 handshakes
    expect = {a: (2, 0, 2), b: (1, 1, 1), c: (0, 2, 0)}
    for n, (dialed, accepted, configured) in expect.items():
        st = n.status()
        assert st["node_id"] == n.id, st
        assert st["roles"] == "relay", st
        assert st["handshakes_ok"] == 2, "%s handshakes_ok %r" % (n.name, st["handshakes_ok"])
        assert st["handshakes_failed"] == 0, "%s: %r" % (n.name, st)
        assert st["links_dialed"] == dialed, "%s links_dialed %r" % (n.name, st["links_dialed"])
        assert st["links_accepted"] == accepted, "%s: %r" % (n.name, st)
        assert st["peers_configured"] == configured, "%s: %r" % (n.name, st)
        assert st["links_open"] == 2 and st["links"] == 2, "%s: %r" % (n.name, st)
        closed = {k: v for k, v in st.items() if k.startswith("closed_") and v}
        assert not closed, "%s closed links: %r" % (n.name, closed)


def test_wrong_expected_key_never_links(net):
    c = net.node("c")  # never started: only its identity is used
    b = net.node("b").start()
    base = b.status()["closed_hs_auth"]
    d = net.node("d", peers=[("b", b.addr, c.id)]).start()
    seen_open = []

    def rejected():
        for p in d.peers():
            if p.get("state") == "open":
                seen_open.append(("d", p))
        for p in b.peers():
            if p.get("state") == "open":
                seen_open.append(("b", p))
        assert not seen_open, "a link opened despite the wrong key: %r" % seen_open
        auth = b.status()["closed_hs_auth"]
        rec = [p for p in d.peers() if p.get("name") == "b"]
        return (auth >= base + 1 and rec and rec[0]["state"] == "backoff"
                and rec[0]["failures"] >= 1 and rec)

    rec = wait_for(rejected, 15.0, "b to reject d's handshake and d to back off")
    assert rec[0]["peer"] == c.id, "d's record names %r, want the expected id %s" % (rec, c.id)
    assert rec[0]["attempts"] >= 1, rec
    assert b.status()["handshakes_ok"] == 0
    assert d.status()["handshakes_ok"] == 0
    assert d.status()["links_open"] == 0


def suite_pair(net, initiator_aead, responder_aead, want):
    r = net.node("r", aead=responder_aead).start()
    i = net.node("i", aead=initiator_aead, peers=[r]).start()
    wait_open(i, {r.id})
    wait_open(r, {i.id})
    got_i, got_r = i.open_peers()[r.id]["suite"], r.open_peers()[i.id]["suite"]
    assert got_i == want and got_r == want, \
        "suites %s/%s, want %s (initiator aead=%s, responder aead=%s)" % (
            got_i, got_r, want, initiator_aead, responder_aead)


def test_suite_chacha20poly1305(net):
    suite_pair(net, "chacha20poly1305", "chacha20poly1305", "chacha20poly1305")


def test_suite_chacha20poly1305_one_side(net):
    suite_pair(net, "chacha20poly1305", "auto", "chacha20poly1305")


def test_suite_aes256gcm(net):
    if not cpu_has_aes():
        raise ovltest.Skip("this CPU lacks AES-NI/PCLMUL, so aes256gcm is unavailable")
    suite_pair(net, "aes256gcm", "aes256gcm", "aes256gcm")


def test_suite_auto_lists_available(net):
    n = net.node("n").start()
    aead = n.status()["aead"].split(",")
    assert "chacha20poly1305" in aead, aead
    assert ("aes256gcm" in aead) == cpu_has_aes(), "aead %r, cpu aes %s" % (aead, cpu_has_aes())


def test_hung_peer_declared_dead(net):
    """A peer that stops (SIGSTOP: its sockets stay open, it just never
    answers) is declared dead after heartbeat x heartbeat_misses."""
    hb = {"heartbeat": 200, "heartbeat_misses": 3}
    b = net.node("b", link=hb).start()
    a = net.node("a", link=hb, peers=[b]).start()
    wait_open(a, [b.id])
    wait_open(b, [a.id])
    # Quiet links still carry heartbeats, so nothing dies while both run.
    before = a.status()
    wait_for(lambda: a.status()["heartbeats"] >= before["heartbeats"] + 3, 5.0,
             "a to send heartbeats on its quiet link")
    b.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for(lambda: a.status()["closed_dead"] == 1, 5.0, "a to declare b dead")
        took = time.monotonic() - t0
        st = a.status()
        print("  b declared dead after %.2f s; dead_detect_ms_last=%d" % (
            took, st["dead_detect_ms_last"]))
        # Never before 3 intervals of silence; how soon after is the timer's
        # business (test_link_timers checks it at exact times), and a busy
        # machine runs timers late.
        assert st["dead_detect_ms_last"] >= 600, st["dead_detect_ms_last"]
        assert st["closed_idle"] == 0 and st["links_open"] == 0, st
    finally:
        b.send_signal(signal.SIGCONT)


if __name__ == "__main__":
    ovltest.run_tests("test_links", [
        test_three_nodes_link_up,
        test_three_nodes_counters,
        test_wrong_expected_key_never_links,
        test_suite_chacha20poly1305,
        test_suite_chacha20poly1305_one_side,
        test_suite_aes256gcm,
        test_suite_auto_lists_available,
        test_hung_peer_declared_dead,
    ])
