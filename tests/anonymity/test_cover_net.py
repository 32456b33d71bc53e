"""Cover traffic on a real network (suite "anonymity").

Drop cover: clientA sends it at a mean gap of 20 ms ([client]
cover_interval) on its chain and nothing else. Every cover cell crosses
the whole chain, is peeled like any cell by every hop, and is discarded by
the exit alone (relay_dropped_cover); nothing reaches any destination. The
rate matches the configured one.

Loop cover ([client] loop_interval): each loop cell goes to the exit and
comes back to clientA along the chain's backward path.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

GAP_MS = 20


def test_drop_cover(net):
    tn = ovltest.testnet(net, relays=3, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=[("clientA", "client", "cover_interval", str(GAP_MS))])
    a, b = tn["clientA"], tn["clientB"]
    wait_for(lambda: any(c["state"] == "ready" for c in tn.ctl(a.name, "chains")), 10.0,
             "clientA's chain")
    c0, t0 = a.status()["client_cover_out"], time.monotonic()
    wait_for(lambda: a.status()["client_cover_out"] >= c0 + 100, 10.0, "100 cover cells")
    st = a.status()
    rate = (st["client_cover_out"] - c0) / (time.monotonic() - t0)
    print("cover: %.1f cells/s (configured %.1f)" % (rate, 1000.0 / GAP_MS))
    assert 0.5 * 1000 / GAP_MS < rate < 1.5 * 1000 / GAP_MS, rate
    relays = [tn[r.name].status() for r in tn.relays()]
    dropped = sum(r["relay_dropped_cover"] for r in relays)
    peeled = sum(r["relay_cells_peeled"] for r in relays)
    print("exits dropped %d cover cells; relays peeled %d cells" % (dropped, peeled))
    assert dropped >= st["client_cover_out"] - 20 and dropped <= st["client_cover_out"], \
        (dropped, st["client_cover_out"])
    # Each cover cell was peeled by all three hops, like a real one.
    assert peeled >= 3 * dropped, (peeled, dropped)
    assert b.status()["client_fragments_in"] == 0, "cover reached a destination"
    assert st["client_messages_sent"] == 0


def test_loop_cover(net):
    tn = ovltest.testnet(net, relays=3, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=[("clientA", "client", "loop_interval", str(GAP_MS))])
    a, b = tn["clientA"], tn["clientB"]
    wait_for(lambda: a.status()["client_loops_in"] >= 100, 15.0, "100 loops back at clientA")
    st = a.status()
    print("loops: %d out, %d back" % (st["client_loops_out"], st["client_loops_in"]))
    assert st["client_loops_in"] <= st["client_loops_out"] <= st["client_loops_in"] + 20, st
    assert st["client_dropped_bad"] == 0 and st["client_dropped_auth"] == 0, st
    assert b.status()["client_fragments_in"] == 0, "loop cover reached a destination"


def test_cover_budget(net):
    """[node] cover_budget = 25: drop cover every 20 ms is cut to a quarter
    of the cells clientA sends; the rest is skipped and counted."""
    tn = ovltest.testnet(net, relays=3, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=[("clientA", "client", "cover_interval", str(GAP_MS)),
                                ("clientA", "node", "cover_budget", "25")])
    a, b = tn["clientA"], tn["clientB"]
    wait_for(lambda: any(c["state"] == "ready" for c in tn.ctl(a.name, "chains")), 10.0,
             "clientA's chain")
    for i in range(20):
        tn.ctl(a.name, "send", "--to", b.id, "m%d" % i)
    wait_for(lambda: a.status()["client_cover_skipped"] >= 50, 10.0, "cover skipped over budget")
    st = a.status()
    print("budget 25%%: %d cover of %d cells (%d of them padding), %d skipped" % (
        st["cover_out"], st["cells_out"], st["padding_out"], st["cover_skipped"]))
    assert st["cover_out"] * 100 <= 25 * st["cells_out"] + 100, st
    assert st["cover_out"] == st["client_cover_out"] + st["padding_out"], st
    assert st["cover_skipped"] >= st["client_cover_skipped"], st
    assert 200 <= st["cover_permille"] <= 260, st


if __name__ == "__main__":
    ovltest.run_tests("test_cover_net", [test_drop_cover, test_loop_cover, test_cover_budget])
