"""Cover traffic on a real network (suite "anonymity").

Drop cover: clientA sends it at a mean gap of 20 ms ([client]
cover_interval) on its chain and nothing else. Every cover cell crosses
the whole chain, is peeled like any cell by every hop, and is discarded by
the exit alone (relay_dropped_cover); nothing reaches any destination. The
rate matches the configured one.

Loop cover ([client] loop_interval): each loop cell goes to the exit and
comes back to clientA along the chain's backward path.

Link padding ([link] padding_min, padding_max): an idle testnet's links
carry padding at the configured rate, and every padding cell sent arrives.
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
    # Never faster than configured; slower only as far as a busy machine
    # holds the daemon's timers back (a quarter of the rate is far beyond).
    assert 0.25 * 1000 / GAP_MS < rate < 1.5 * 1000 / GAP_MS, rate
    relays = [tn[r.name].status() for r in tn.relays()]
    dropped = sum(r["relay_dropped_cover"] for r in relays)
    # Peels read after the drops: every cell the exit dropped by then had
    # been peeled by all three hops before, whichever relay is read first.
    peeled = sum(tn[r.name].status()["relay_cells_peeled"] for r in tn.relays())
    # Cover keeps flowing while the counters are read: the exits cannot have
    # dropped more than clientA sent by a later reading, nor fewer than it
    # sent by an earlier one, less the cells still on the way.
    after = a.status()["client_cover_out"]
    print("exits dropped %d cover cells; relays peeled %d cells" % (dropped, peeled))
    assert st["client_cover_out"] - 20 <= dropped <= after, \
        (dropped, st["client_cover_out"], after)
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


PAD_MIN, PAD_MAX = 100, 300


def test_link_padding(net):
    """[link] padding_min/padding_max on every node of an idle testnet:
    each link carries padding at about one cell per (min + max) / 2 from
    each end, every padding cell sent is received (and discarded) by the
    peer, and padding is all the cover there is."""
    tn = ovltest.testnet(net, relays=3, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=[("all", "link", "padding_min", str(PAD_MIN)),
                                ("all", "link", "padding_max", str(PAD_MAX))])
    a = tn["clientA"]
    wait_for(lambda: any(c["state"] == "ready" for c in tn.ctl(a.name, "chains")), 10.0,
             "clientA's chain")
    names = [n.name for n in tn.nodes]
    before = {n: tn[n].status() for n in names}
    t0 = time.monotonic()
    start = sum(before[n]["padding_out"] for n in names)
    wait_for(lambda: sum(tn[n].status()["padding_out"] for n in names) >= start + 300, 20.0,
             "300 padding cells")
    after = {n: tn[n].status() for n in names}
    secs = time.monotonic() - t0
    out = sum(after[n]["padding_out"] - before[n]["padding_out"] for n in names)
    ends = sum(after[n]["links"] for n in names)  # every link counted at both ends
    rate = out / secs / ends
    mean_gap = (PAD_MIN + PAD_MAX) / 2000.0
    print("padding: %.2f cells/s per link end (configured mean gap %.0f ms: at most %.1f); "
          "%d link ends" % (rate, mean_gap * 1000, 1 / mean_gap, ends))
    # Directory heartbeats are real cells and restart the quiet on their
    # links, so the rate is somewhat below 1 / mean gap, never above (and
    # further below it on a busy machine, whose timers run late).
    assert 0.25 / mean_gap < rate < 1.2 / mean_gap, rate
    total_out = sum(after[n]["padding_out"] for n in names)
    total_in = sum(after[n]["padding_in"] for n in names)
    assert total_out - 2 * ends <= total_in <= total_out, (total_in, total_out)
    for n in names:
        assert after[n]["cover_out"] == after[n]["padding_out"], (n, after[n])
        assert after[n]["cover_skipped"] == 0, (n, after[n])


if __name__ == "__main__":
    ovltest.run_tests("test_cover_net", [test_drop_cover, test_loop_cover, test_cover_budget,
                                         test_link_padding])
