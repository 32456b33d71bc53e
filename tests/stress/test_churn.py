"""Churn: messages keep arriving, exactly once, while relays die and return.

A 30-relay testnet (tools/ovl-testnet). clientA streams small messages to
clientB; a churn driver SIGKILLs a random 20% of the relays every 10 s,
always including one hop of clientA's current chain, and restarts them a
few seconds later. Chains break (their hops see the links
close and tear them down), the bootstrap drops the dead relays at once,
clientA builds new chains and sends again what was not acknowledged.
At the end every message must have been acknowledged and clientB must
hold each one exactly once. Bounded to about two minutes.

OVL_TEST_SEED=N repeats a run's choice of victims; the seed is printed.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

RELAYS = 30
KILL_SHARE = 0.2
ROUND_S = 10.0          # a round: kill, stay dead DEAD_S, come back
DEAD_S = 4.0
ROUNDS = 6
RATE = 10               # messages per second from clientA
SETTLE_S = 60.0         # after the churn: every message acknowledged
TRANSPORT = "tcp"       # tools/ovl-testnet --transport (test_churn_quic.py: quic)
HIDDEN = False          # tools/ovl-testnet --hidden (test_churn_hidden.py)


class Ctx:
    pass


def fixture(net):
    ctx = Ctx()
    seed = int(os.environ.get("OVL_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
    print("OVL_TEST_SEED=%d" % seed)
    ctx.rng = random.Random(seed)
    ctx.tn = ovltest.testnet(net, relays=RELAYS, clients=2, heartbeat=1000, ttl=5000,
                             log_level="warn", transport=TRANSPORT, hidden=HIDDEN)
    ctx.a, ctx.b = ctx.tn["clientA"], ctx.tn["clientB"]
    ctx.sent, ctx.got = [], {}
    return ctx


def drain(ctx):
    """Take what clientB received; no ID may come twice."""
    for m in ctx.tn.ctl(ctx.b.name, "recv", "--max", "1000"):
        assert m["id"] not in ctx.got, "message %s delivered twice" % m["id"]
        ctx.got[m["id"]] = m


def pick_victims(ctx, relays):
    """KILL_SHARE of the relays at random, one of them a hop of clientA's
    ready chain if it has one: a round that missed the chain (about one in
    two at random) would test nothing."""
    tn, k = ctx.tn, int(RELAYS * KILL_SHARE)
    hops = [tn.name_of(h) for c in tn.ctl(ctx.a.name, "chains") if c["state"] == "ready"
            for h in c["hops"]]
    hops = [h for h in hops if h in relays]
    first = [ctx.rng.choice(hops)] if hops else []
    return first + ctx.rng.sample([r for r in relays if r not in first], k - len(first))


def test_stream_through_churn(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    relays = [r.name for r in tn.relays()]
    dead, dead_since = [], 0.0
    t0 = time.monotonic()
    next_kill = t0 + 2.0
    end = t0 + ROUNDS * ROUND_S
    n = 0
    kills = 0
    while time.monotonic() < end:
        now = time.monotonic()
        if dead and now - dead_since >= DEAD_S:
            for name in dead:
                tn.restart(name)
            dead = []
        if not dead and now >= next_kill:
            dead = pick_victims(ctx, relays)
            for name in dead:
                tn.kill(name)
            kills += len(dead)
            dead_since, next_kill = now, now + ROUND_S
            print("%5.1f s: killed %s" % (now - t0, " ".join(sorted(dead))))
        text = "m%05d %s" % (n, "x" * ctx.rng.randrange(0, 1500))
        out = tn.ctl(a.name, "send", "--to", b.id, text)
        ctx.sent.append(out["id"])
        n += 1
        if n % RATE == 0:
            drain(ctx)
        time.sleep(max(0.0, 1.0 / RATE - (time.monotonic() - now)))
    for name in dead:
        tn.restart(name)
    print("sent %d messages through %d kills in %.0f s" % (n, kills, time.monotonic() - t0))

    def settled():
        drain(ctx)
        st = a.status()
        assert st["client_messages_failed"] == 0, "messages failed: %r" % {
            k: v for k, v in st.items() if k.startswith("client_")}
        return st["client_send_queued"] == 0 and len(ctx.got) >= len(ctx.sent)

    wait_for(settled, SETTLE_S, "every message acknowledged and received")
    st_a, st_b = a.status(), b.status()
    print("A: acks %d, retransmits %d, chains built %d, failed %d, repaired %d; "
          "B: duplicates %d" % (
              st_a["client_acks_in"], st_a["client_retransmits"], st_a["client_chains_built"],
              st_a["client_chains_failed"], st_a["client_chains_repaired"],
              st_b["client_duplicates"]))
    missing = set(ctx.sent) - set(ctx.got)
    assert not missing, "%d messages never arrived" % len(missing)
    assert set(ctx.got) == set(ctx.sent), "unexpected ids arrived"
    assert st_a["client_acks_in"] == len(ctx.sent), st_a["client_acks_in"]
    broke = st_a["client_chains_failed"] + st_a["client_chains_repaired"]
    assert broke > 0, "the churn never broke a chain: test too weak"
    boot = tn["boot"].status()
    print("bootstrap: dropped %d nodes as their links closed" % boot["dir_dropped_link_closed"])
    assert boot["dir_dropped_link_closed"] >= kills, boot["dir_dropped_link_closed"]


def run(module, **params):
    """Run the churn test after setting params (TRANSPORT, ROUNDS, ...)."""
    if params.get("TRANSPORT", TRANSPORT) != "tcp":
        ovltest.require_quic()
    globals().update(params)
    ovltest.run_tests(module, [test_stream_through_churn], fixture=fixture)


if __name__ == "__main__":
    run("test_churn")
