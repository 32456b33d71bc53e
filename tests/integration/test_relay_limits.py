"""A relay's shares end to end (the exact rules are in tests/unit/test_relay.c).

Every relay lets one incoming link hold a single chain ([relay]
max_chains_per_link = 1). clientA builds one-hop chains until one of its
setups lands on the relay that still carries its previous chain: that relay
refuses it (SETUP_FAIL(limit), relay_dropped_share) while clientA keeps
its current chain, and messages keep flowing both ways. The new keys are read
by a real ovld and its counters are reported.
"""

import ovltest
from ovltest import wait_for


def ready_chain(tn, name):
    return ([c for c in tn.ctl(name, "chains") if c["state"] == "ready"] or [None])[-1]


def test_link_share(net):
    extra = [("relay", "relay", "max_chains_per_link", "1"),
             ("relay", "relay", "stall_timeout", "2000")]
    tn = ovltest.testnet(net, relays=3, clients=2, ttl=60000, chain_length=1, extra=extra)
    a, b = tn["clientA"], tn["clientB"]
    relays = tn.relays()
    for c in (a, b):
        wait_for(lambda: ready_chain(tn, c.name), 10.0, "%s's chain" % c.name)
    shared = lambda: sum(r.status()["relay_dropped_share"] for r in relays)  # noqa: E731
    assert shared() == 0
    # Each new chain draws one relay of three; about one in three is the one
    # clientA's current chain is on, which it may not use twice.
    for _ in range(60):
        if shared() > 0:
            break
        st = a.status()
        done = st["client_chains_built"] + st["client_chains_failed"]
        wait_for(lambda: tn.ctl_run(a.name, "new-chain").returncode == 0, 10.0,
                 "clientA to start a new chain")
        wait_for(lambda: sum(a.status()[k] for k in ("client_chains_built",
                                                    "client_chains_failed")) > done,
                 20.0, "clientA's new chain to be built or refused")
    assert shared() > 0, "no setup of clientA met its share in 60 chains"
    st = [r.status() for r in relays]
    assert sum(s["relay_dropped_limit"] for s in st) == 0, st
    assert all(s["relay_stalled"] == 0 and s["closed_stalled"] == 0 for s in st), st
    out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "after the share")
    assert out.get("result") == "delivered", out
    out = tn.ctl(b.name, "send", "--wait", "--to", a.id, "and back")
    assert out.get("result") == "delivered", out


if __name__ == "__main__":
    ovltest.run_tests("test_relay_limits", [test_link_share])
