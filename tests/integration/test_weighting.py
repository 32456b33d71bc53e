"""Capacity weighting end to end (the statistics are in tests/anonymity).

Relays advertise [relay] capacity in their signed descriptors; the
bootstrap lists what each claims (`ovlctl relays`), and with [chain]
weighting = capacity on every node the bootstrap's generator and a local
client both still build working chains.
"""

import ovltest
from ovltest import wait_for

CAPACITY = {"relay1": 1000, "relay2": 1000, "relay3": 8000}  # relay4 claims nothing


def test_capacity_listed_and_chains_work(net):
    extra = [(name, "relay", "capacity", str(c)) for name, c in CAPACITY.items()]
    extra += [("all", "chain", "weighting", "capacity"),
              ("clientB", "chain", "source", "local")]
    tn = ovltest.testnet(net, relays=4, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=extra)
    listed = {r["id"]: r["capacity"] for r in tn.ctl("boot", "relays")}
    for r in tn.relays():
        assert listed[r.id] == CAPACITY.get(r.name, 0), (r.name, listed)
    a, b = tn["clientA"], tn["clientB"]
    for c in (a, b):
        wait_for(lambda: any(ch["state"] == "ready" for ch in tn.ctl(c.name, "chains")), 10.0,
                 "%s's chain" % c.name)
    tn.ctl(a.name, "send", "--to", b.id, "--wait", "weighted")
    tn.ctl(b.name, "send", "--to", a.id, "--wait", "back")
    assert a.status()["client_messages_received"] == 1
    assert b.status()["client_messages_received"] == 1
    # ovlctl new-chain: a fresh weighted chain takes over.
    built = a.status()["client_chains_built"]
    tn.ctl_run(a.name, "new-chain").check_returncode()
    wait_for(lambda: a.status()["client_chains_replaced"] >= 1, 10.0, "clientA's new chain")
    assert a.status()["client_chains_built"] == built + 1
    tn.ctl(a.name, "send", "--to", b.id, "--wait", "on the new chain")
    assert b.status()["client_messages_received"] == 2


if __name__ == "__main__":
    ovltest.run_tests("test_weighting", [test_capacity_listed_and_chains_work])
