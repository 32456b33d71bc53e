"""Relay chains end to end on a testnet of 1 bootstrap, 6 relays, 2 clients.

One network (tools/ovl-testnet) is shared by the tests, in order:
messages both ways arrive intact, every forward cell was peeled by exactly
L relays, each relay knows only its two neighbours, a relay drops a cell
with one flipped bit or replayed and counts it (ovl-probe chain-tamper),
the bootstrap's chain cache keeps a ref for chain_cache_ttl, and a
killed relay leaves the directory within the TTL and is no longer chosen.

Sizes are log-uniform between 1 B and 200 KiB, so 400 messages are a few
MB. OVL_TEST_SEED=N repeats a run; the seed is printed first.

TRANSPORT, L, RELAYS and N_MSG are read when the tests run, so
test_chains_quic.py and test_chains_mixed.py run the same tests over other
networks (tools/ovl-testnet --transport); test_links_transport checks that
each link really used the transport the network was built for.
"""

import base64
import hashlib
import math
import os
import random
import re
import time

import ovltest
from ovltest import wait_for

TRANSPORT = "tcp"       # tools/ovl-testnet --transport
L = 3                   # hops per chain
RELAYS = 6
HEARTBEAT_MS = 1000      # the smallest [dir] heartbeat ovld accepts
TTL_MS = 2500
CACHE_TTL_MS = 2000
N_MSG = 200             # per direction
MAX_SIZE = 200 * 1024
SLACK_S = 2.0           # scheduling slack on top of protocol timers
NODE_ID_RE = re.compile(r"^[a-z2-7]{52}$")


class Ctx:
    def __init__(self, net, tn):
        self.net, self.tn = net, tn
        self.a, self.b = tn["clientA"], tn["clientB"]
        seed = int(os.environ.get("OVL_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
        print("OVL_TEST_SEED=%d" % seed)
        self.rng = random.Random(seed)
        self.sent = {}  # message id -> (sender, receiver, sha256, len, reply)


def fixture(net):
    tn = ovltest.testnet(net, relays=RELAYS, clients=2, heartbeat=HEARTBEAT_MS, ttl=TTL_MS,
                         chain_cache_ttl=CACHE_TTL_MS, chain_length=L, transport=TRANSPORT)
    _current[0] = tn
    return Ctx(net, tn)


_current = [None]  # the testnet, for the finally in main


# ---- helpers ---------------------------------------------------------------


def log_uniform_size(rng):
    return max(1, min(MAX_SIZE, int(round(math.exp(rng.uniform(0, math.log(MAX_SIZE)))))))


def send(ctx, src, dst, path, reply):
    """ovlctl send --file; return the message id it prints."""
    args = ["send", "--to", dst.id] + (["--reply"] if reply else []) + ["--file", path]
    out = ctx.tn.ctl(src.name, *args)
    mid = out.get("id") if isinstance(out, dict) else out
    assert isinstance(mid, str) and mid, "send printed %r" % (out,)
    return mid


def payload(m):
    """The bytes of one `recv --json` record."""
    if "base64" in m:
        return base64.b64decode(m["base64"], validate=True)
    return m["text"].encode("utf-8")


def node_ids(obj):
    """Every node ID anywhere in a JSON value (a chain's hops and backups)."""
    if isinstance(obj, str):
        return {obj} if NODE_ID_RE.match(obj) else set()
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return set().union(*(node_ids(v) for v in obj)) if obj else set()
    return set()


def dir_chain(ctx, client="clientA"):
    ch = ctx.tn.ctl(client, "dir-chain", "--length", L)
    assert ch.get("ref"), "dir-chain printed no ref: %r" % (ch,)
    assert len(ch.get("positions", [])) == L, "dir-chain gave %r, not %d positions" % (ch, L)
    return ch


def statuses(ctx, nodes):
    return {n.name: n.status() for n in nodes}


# ---- tests -----------------------------------------------------------------


def test_messages_both_ways(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    files = os.path.join(ctx.net.dir, "msgs")
    os.mkdir(files)
    total = 0
    for i in range(N_MSG):
        for src, dst in ((a, b), (b, a)):
            data = ctx.rng.randbytes(log_uniform_size(ctx.rng))
            if i % 7 == 0:  # some text too: recv --json may show it as text
                data = (b"hello %d from %s " % (i, src.name.encode()))[: len(data)] or b"x"
            path = os.path.join(files, "%s-%d" % (src.name, i))
            with open(path, "wb") as f:
                f.write(data)
            reply = i % 2 == 0
            mid = send(ctx, src, dst, path, reply)
            assert mid not in ctx.sent, "message id %s given twice" % mid
            ctx.sent[mid] = (src, dst, hashlib.sha256(data).hexdigest(), len(data), reply)
            total += len(data)
    print("sent %d messages, %d bytes" % (len(ctx.sent), total))

    got = {}

    def drain():
        for dst in (a, b):
            for m in tn.ctl(dst.name, "recv"):
                assert m["id"] not in got, "message %s delivered twice" % m["id"]
                got[m["id"]] = (dst, m)
        return len(got) >= len(ctx.sent)

    # Generous for a loaded 2-core machine, and within meson's 120 s.
    wait_for(drain, 20 + 5 * total / 1e6, "all %d messages to arrive (got %d)"
             % (len(ctx.sent), len(got)))
    assert set(got) == set(ctx.sent), "unexpected ids: %r" % (set(got) - set(ctx.sent))
    for mid, (dst, m) in got.items():
        src, want_dst, digest, size, reply = ctx.sent[mid]
        assert dst is want_dst, "%s went to %s, not %s" % (mid, dst.name, want_dst.name)
        data = payload(m)
        assert len(data) == size == m["len"], "%s: %d bytes (len %s), sent %d" % (
            mid, len(data), m.get("len"), size)
        assert hashlib.sha256(data).hexdigest() == digest, "%s arrived corrupted" % mid
        if reply:
            assert m.get("from") == src.id, "%s: from %r, want %s" % (mid, m.get("from"), src.id)
        else:
            assert not m.get("from"), "%s: sender revealed without --reply: %r" % (mid, m["from"])


def test_send_wait(ctx):
    """send --wait returns once the destination acknowledged the message;
    it arrives once, and the sender counted the acknowledgement."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    before = a.status()["client_acks_in"]
    out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "waited for")
    assert out.get("result") == "delivered" and out.get("id"), out
    got = wait_for(lambda: [m for m in tn.ctl(b.name, "recv") if m["id"] == out["id"]] or None,
                   10.0, "the waited-for message at %s" % b.name)
    assert len(got) == 1 and payload(got[0]) == b"waited for", got
    assert a.status()["client_acks_in"] >= before + 1
    ctx.sent_waited = True


def test_each_cell_peeled_by_l_relays(ctx):
    relays, clients = ctx.tn.relays(), [ctx.a, ctx.b]
    keys = {"relay": ("relay_cells_peeled", "relay_setups_in", "relay_dropped_auth"),
            "client": ("client_cells_out", "client_messages_received")}
    seen = {}

    def balanced():
        # Read twice: the counters must have stopped moving, then add up.
        st = {name: {k: v[k] for k in keys[ctx.tn[name].role]}
              for name, v in statuses(ctx, relays + clients).items()}
        if st != seen.get("last"):
            seen["last"] = st
            return False
        # A client's cells_out counts its CHAIN_SETUP cells too; each relay
        # on the path counts a setup in setups_in, not in cells_peeled.
        peeled = sum(st[r.name]["relay_cells_peeled"] + st[r.name]["relay_setups_in"]
                     for r in relays)
        out = sum(st[c.name]["client_cells_out"] for c in clients)
        seen["sums"] = (peeled, out)
        return peeled == L * out

    try:
        wait_for(balanced, 10.0, "relay counters to settle and balance")
    except AssertionError:
        peeled, out = seen.get("sums", (None, None))
        raise AssertionError("sum of relay_cells_peeled + relay_setups_in = %s, but"
                             " L x client_cells_out = %d x %s; per node: %r"
                             % (peeled, L, out, seen.get("last"))) from None
    st = seen["last"]
    assert sum(st[c.name]["client_cells_out"] for c in clients) > len(ctx.sent)
    # Quiet now: nothing left queued on any link (QUIC holds a heartbeat
    # until it is acknowledged, hence the wait), nothing unacknowledged.
    wait_for(lambda: all(n.status()["bytes_queued"] == 0 for n in relays + clients), 5.0,
             "every link's send queue to empty")
    for n in clients:
        full = n.status()
        if n.role == "client":
            assert full["client_send_queued"] == 0, (n.name, full["client_send_queued"])
            assert full["client_chains"] >= 1 and full["client_bytes_held"] > 0, full
    for r in relays:
        assert st[r.name]["relay_dropped_auth"] == 0, "%s dropped cells as forged: %r" % (
            r.name, st[r.name])
    waited = 1 if getattr(ctx, "sent_waited", False) else 0
    assert st[ctx.b.name]["client_messages_received"] == N_MSG + waited, st[ctx.b.name]
    assert st[ctx.a.name]["client_messages_received"] == N_MSG, st[ctx.a.name]


def test_relays_learn_only_neighbours(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    seen = {r.name: tn.ctl(r.name, "relay-chains") for r in tn.relays()}
    by_id = {r.id: r.name for r in tn.relays()}
    checked = 0
    for client in (a, b):
        for ch in tn.ctl(client.name, "chains"):
            if ch["state"] != "ready":
                continue
            hops = ch["hops"]
            assert len(hops) == L, "%s chain %r" % (client.name, ch)
            for i, hop in enumerate(hops):
                prev = client.id if i == 0 else hops[i - 1]
                nxt = hops[i + 1] if i + 1 < L else ""
                entries = seen[by_id[hop]]
                want = [e for e in entries if e["prev"] == prev and e["next"] == nxt
                        and bool(e["exit"]) == (i + 1 == L)]
                assert want, "%s (hop %d of %s's chain) has no entry with prev %s, next %r: %r" % (
                    by_id[hop], i, client.name, prev, nxt, entries)
                checked += 1
    assert checked >= 2 * L, "only %d hops checked" % checked
    # No relay state names anything but its two link neighbours: never both
    # ends of a conversation, and the destination never at all (the exit
    # reaches it through a delivery ID, not a chain hop).
    for name, entries in seen.items():
        for e in entries:
            ends = {e["prev"], e["next"]}
            assert not {a.id, b.id} <= ends, "%s knows both clients: %r" % (name, e)
            assert e["next"] not in (a.id, b.id), "%s has a client as next hop: %r" % (name, e)


def link_scheme(tn, a, b):
    """The transport of the open link between nodes a and b, seen from a."""
    for p in tn.ctl(a.name, "peers"):
        if p["peer"] == b.id and p["state"] == "open":
            return p["remote"].split("://", 1)[0]
    raise AssertionError("%s has no open link to %s" % (a.name, b.name))


def test_links_transport(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    by_id = {n.id: n for n in tn.nodes}
    # A QUIC link is bound to its connection and seals nothing; a TCP link
    # seals every cell (docs/PROTOCOL.md 8.3).
    opened = 0
    for n in tn.nodes:
        for p in tn.ctl(n.name, "peers"):
            if p.get("state") == "open":
                bound = p["remote"].startswith("quic://")
                assert (p["suite"] == "bound") == bound, "%s -> %s: suite %s" % (
                    n.name, p["remote"], p["suite"])
                opened += 1
    assert opened > 0, "no open links"
    if TRANSPORT != "mixed":
        for n in tn.nodes:
            schemes = {p["remote"].split("://", 1)[0] for p in tn.ctl(n.name, "peers")}
            assert schemes == {TRANSPORT}, "%s has links over %s" % (n.name, schemes)
        return
    # mixed: client-relay links are TCP and relay-relay links QUIC, so the
    # path of a message from a to b over a's chain alternates.
    checked = 0
    for src, dst in ((a, b), (b, a)):
        for ch in tn.ctl(src.name, "chains"):
            if ch["state"] != "ready":
                continue
            path = [src] + [by_id[h] for h in ch["hops"]] + [dst]
            got = [link_scheme(tn, x, y) for x, y in zip(path, path[1:])]
            want = ["tcp" if i % 2 == 0 else "quic" for i in range(len(got))]
            if L == 2:
                assert got == want, "%s's chain %s: hops over %s" % (
                    src.name, [n.name for n in path], got)
            assert got[0] == got[-1] == "tcp" and set(got[1:-1]) == {"quic"}, got
            checked += 1
    assert checked >= 2, "no ready chains to check"


def test_relay_drops_tampered_cell(ctx):
    tn = ctx.tn
    relay, boot = tn["relay1"], tn["boot"]
    before = relay.status()
    host, port = before["listen"][0].rsplit("/", 1)[1].rsplit(":", 1)
    bhost, bport = boot.status()["listen"][0].rsplit("/", 1)[1].rsplit(":", 1)
    r = ovltest.run([ovltest.OVL_PROBE, "chain-tamper", host, port, relay.id,
                     bhost, bport, boot.id, "--timeout-ms", "10000"])
    print("  ovl-probe chain-tamper: exit %d: %s" % (r.returncode, r.stdout.strip()))
    assert r.returncode == 0, (r.stdout, r.stderr)
    after = relay.status()
    delta = {k: after[k] - before[k] for k in (
        "relay_setups_ok", "relay_cells_peeled", "relay_dropped_cover", "relay_dropped_auth",
        "relay_cells_forwarded", "relay_delivered_cells")}
    # The valid cover cell is peeled and discarded; the flipped one and the
    # replay of the valid one fail the relay's AEAD and are counted.
    assert delta == {"relay_setups_ok": 1, "relay_cells_peeled": 1, "relay_dropped_cover": 1,
                     "relay_dropped_auth": 2, "relay_cells_forwarded": 0,
                     "relay_delivered_cells": 0}, delta


def test_chain_cache(ctx):
    t0 = time.monotonic()
    first, second = dir_chain(ctx), dir_chain(ctx)
    if first["ref"] != second["ref"]:
        # The cached chain may have expired between the two: ask again.
        first, second = dir_chain(ctx), dir_chain(ctx)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < CACHE_TTL_MS / 1000.0
    assert first["ref"] == second["ref"], "two requests within the cache TTL: %s then %s" % (
        first["ref"], second["ref"])
    assert first["positions"] == second["positions"], "same ref, different chain"
    ids = node_ids(first["positions"])
    relay_ids = {r.id for r in ctx.tn.relays()}
    assert ids and ids <= relay_ids, "chain names non-relays: %r" % (ids - relay_ids)

    wait_for(lambda: (lambda c: c if c["ref"] != first["ref"] else None)(dir_chain(ctx)),
                     CACHE_TTL_MS / 1000.0 + SLACK_S, "a new chain ref after the cache TTL")
    assert time.monotonic() - t0 <= CACHE_TTL_MS / 1000.0 + SLACK_S


def test_dead_relay_leaves_directory(ctx):
    tn = ctx.tn
    listed = lambda: {r["id"] for r in tn.ctl("boot", "relays")}  # noqa: E731
    victim = tn["relay%d" % RELAYS]
    assert victim.id in listed(), "%s is not listed before the kill" % victim.name
    t0 = time.monotonic()
    tn.kill(victim.name)  # SIGKILL by pid: no goodbye
    limit = (TTL_MS + HEARTBEAT_MS) / 1000.0 + SLACK_S
    wait_for(lambda: victim.id not in listed(), limit, "%s to leave `relays`" % victim.name)
    gone_after = time.monotonic() - t0
    print("%s left the directory %.2f s after SIGKILL" % (victim.name, gone_after))
    assert len(listed()) == RELAYS - 1

    # A chain cached before the expiry may still name it; the next one must not.
    before = dir_chain(ctx)["ref"]
    fresh = wait_for(lambda: (lambda c: c if c["ref"] != before else None)(dir_chain(ctx)),
                     CACHE_TTL_MS / 1000.0 + SLACK_S, "a chain generated after the expiry")
    for ch in [fresh] + [dir_chain(ctx, "clientB") for _ in range(3)]:
        assert victim.id not in node_ids(ch["positions"]), \
            "chain %s still names %s" % (ch["ref"], victim.name)


def test_backup_replaces_failed_hop(ctx):
    """Kill the middle hop of clientA's chain: the hop before it tells A
    (BODY_BROKEN) and keeps its part of the chain; A puts that position's
    backup in its place and sets up only the hops from there on (a
    BODY_EXTEND that ends at the first hop), so the chain keeps its number
    and the first hop's state for it survives the repair."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    # clientA's first chain may have been drawn before every relay had
    # registered, with no backup left for a position: build one now that
    # the directory lists all six (three hops, one backup each).
    last = max([c["chain"] for c in tn.ctl(a.name, "chains")] or [0])
    wait_for(lambda: tn.ctl_run(a.name, "new-chain").returncode == 0, 10.0,
             "clientA to take new-chain (not busy building one)")
    fresh = wait_for(lambda: [c for c in tn.ctl(a.name, "chains")
                              if c["state"] == "ready" and c["chain"] > last] or None,
                     10.0, "clientA's new chain")
    old, number = fresh[-1]["hops"], fresh[-1]["chain"]
    victim, first = tn.name_of(old[1]), tn.name_of(old[0])
    before = a.status()["client_chains_repaired"]
    extended = tn[first].status()["relay_reextended"]
    # clientB's chains may run first -> victim too: each repairs there as well.
    also = sum(1 for c in tn.ctl(b.name, "chains") if c["state"] == "ready"
               and any(x == old[0] and y == old[1] for x, y in zip(c["hops"], c["hops"][1:])))
    t_kill = time.monotonic()
    tn.kill(victim)

    def repaired():
        if a.status()["client_chains_repaired"] <= before:
            return None
        for c in tn.ctl(a.name, "chains"):
            h = c["hops"]
            if c["state"] == "ready" and h[0] == old[0] and h[2:] == old[2:] and h[1] != old[1]:
                return c
        return None

    chain = wait_for(repaired, 10.0, "clientA to repair its chain after %s died" % victim)
    new = chain["hops"]
    print("  %s -> %s" % ([tn.name_of(h) for h in old], [tn.name_of(h) for h in new]))
    assert new[0] == old[0] and new[2:] == old[2:], (old, new)
    assert new[1] != old[1] and tn.name_of(new[1]) != victim, new
    assert chain["chain"] == number, "chain %s replaced by %s: not repaired in place" % (
        number, chain["chain"])
    grew = tn[first].status()["relay_reextended"] - extended
    assert 1 <= grew <= 1 + also, "%s re-extended %d chains (clientB had %d through it)" % (
        first, grew, also)
    since_kill_ms = (time.monotonic() - t_kill) * 1000.0
    # clientA's retiring chain may have crossed the victim too and been
    # replaced by a fresh one through the same two hops: the repaired chain
    # is the one whose part at the first hop is older than the kill.
    mine = [c for c in tn.ctl(first, "relay-chains") if c["prev"] == a.id and c["next"] == new[1]]
    kept = [c for c in mine if c["age_ms"] > since_kill_ms]
    assert kept and all(c["broken"] == 0 for c in kept), \
        "%s set its part up again (kill %.0f ms ago): %r" % (first, since_kill_ms, mine)
    out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "after the repair")
    assert out.get("result") == "delivered", out
    wait_for(lambda: [m for m in tn.ctl(b.name, "recv") if m["id"] == out["id"]] or None, 10.0,
             "the message sent over the repaired chain")
    tn.restart(victim)
    wait_for(lambda: tn[victim].id in {r["id"] for r in tn.ctl("boot", "relays")}, 10.0,
             "%s to register again" % victim)


TESTS = [test_messages_both_ways, test_send_wait, test_each_cell_peeled_by_l_relays,
         test_relays_learn_only_neighbours, test_links_transport, test_relay_drops_tampered_cell,
         test_chain_cache, test_backup_replaces_failed_hop, test_dead_relay_leaves_directory]

def run(module, tests, **params):
    """Run tests on a network of this module's shape after setting params
    (TRANSPORT, L, RELAYS, N_MSG); QUIC networks skip without QUIC."""
    if params.get("TRANSPORT", TRANSPORT) != "tcp":
        ovltest.require_quic()
    globals().update(params)
    try:
        ovltest.run_tests(module, tests, fixture=fixture)
    finally:
        if _current[0] is not None:
            _current[0].stop()  # normally done by run_tests already; by pid


if __name__ == "__main__":
    run("test_chains", TESTS)
