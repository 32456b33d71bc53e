"""A relay's own loop cover on a real network (suite "anonymity").

[relay] loop_interval makes a relay send loop cover of its own (Loopix's
mix loops; docs/PROTOCOL.md 19.11): relay1 builds a chain of other relays
and sends loop cells to itself through it at Poisson times. These tests hold
it to what test_cover_net.py holds a client's cover to, and to what makes it
a relay's and not a client's:

- rate: never faster than configured, slower only as far as a busy machine
  holds timers back (the gaps themselves are ovl_random_exp_ms's, the
  timer the client's cover uses, whose law test_cover.c checks with a
  Kolmogorov-Smirnov test);
- loops come home: every loop sent comes back but those still on the way,
  and the exit of the loop chain originated at least as many LOOP_BACKs;
- every hop peels the loop cells like any cell, and at relay1's first hop
  the loop chain asked for the lifetime a client's chain asks for, so the
  setup says nothing a client's does not (test_indist.c compares the bytes
  of wrapped loop and data cells);
- relay1 stays a relay: registered without the endpoint flag, no client
  counters, refuses to send; its chains never hold itself;
- [node] cover_budget caps the relay's loops like a client's cover;
- ovld refuses loop_interval without the relay role or a bootstrap.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

GAP_MS = 20


def loop_net(net, *extra):
    # Four relays: relay1's chains of three leave it out.
    return ovltest.testnet(net, relays=4, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                           extra=[("relay1", "relay", "loop_interval", str(GAP_MS))] + list(extra))


def ready_chain(tn, name):
    chains = [c for c in tn.ctl(name, "chains") if c["state"] == "ready"]
    return chains[0] if chains else None


def test_relay_loops(net):
    tn = loop_net(net)
    r, a, b = tn["relay1"], tn["clientA"], tn["clientB"]
    ch = wait_for(lambda: ready_chain(tn, r.name), 15.0, "relay1's loop chain")
    c0, t0 = r.status()["relay_loops_out"], time.monotonic()
    wait_for(lambda: r.status()["relay_loops_in"] >= c0 + 200, 20.0, "200 loops back at relay1")
    st = r.status()
    rate = (st["relay_loops_out"] - c0) / (time.monotonic() - t0)
    print("relay loops: %.1f cells/s (configured %.1f); %d out, %d back" % (
        rate, 1000.0 / GAP_MS, st["relay_loops_out"], st["relay_loops_in"]))
    assert 0.25 * 1000 / GAP_MS < rate < 1.5 * 1000 / GAP_MS, rate
    assert st["relay_loops_in"] <= st["relay_loops_out"] <= st["relay_loops_in"] + 20, st
    assert st["relay_loops_skipped"] == 0 and st["relay_loop_chains_built"] >= 1, st
    # Its loops are node cover like a client's (no padding in this net's time
    # but what [link] sends by default, counted apart).
    assert st["cover_out"] == st["relay_loops_out"] + st["padding_out"], st
    # A relay, not a client: no client counters, no message API.
    assert not any(k.startswith("client_") for k in st), sorted(st)
    sent = tn.ctl_run(r.name, "send", "--to", b.id, "hello")
    assert sent.returncode != 0 and "client role" in sent.stderr, (sent.returncode, sent.stderr)
    listed = {x["id"]: x["flags"] for x in tn.ctl("boot", "relays")}
    assert listed[r.id] == "relay", listed[r.id]
    assert tn["boot"].status()["dir_endpoints"] == 2
    # Chains of other relays only.
    ch = ready_chain(tn, r.name)
    assert len(ch["hops"]) == 3 and r.id not in ch["hops"], ch
    by_id = {n.id: n.name for n in tn.relays()}
    # The exit answered every loop that came back; read after relay1, so
    # it cannot have answered fewer.
    loops_in = r.status()["relay_loops_in"]
    exit_st = tn[by_id[ch["hops"][2]]].status()
    print("exit of the loop chain originated %d cells" % exit_st["relay_cells_originated"])
    assert exit_st["relay_cells_originated"] >= loops_in, (exit_st, loops_in)
    # Every hop peels them like any cell.
    for hop in ch["hops"]:
        mine = [c for c in tn.ctl(by_id[hop], "relay-chains")
                if c["cells_fwd"] >= 100 and c["cells_back"] >= 100]
        assert mine, (hop, tn.ctl(by_id[hop], "relay-chains"))
    assert a.status()["client_fragments_in"] == 0 and b.status()["client_fragments_in"] == 0


def lifetime_at_first_hop(tn, sender):
    """The lifetime sender's ready chain asked of its first hop (age +
    expiry there, ms), and the chain."""
    ch = wait_for(lambda: ready_chain(tn, sender.name), 15.0, "%s's chain" % sender.name)
    first = next(n for n in tn.relays() if n.id == ch["hops"][0])
    recs = [c for c in tn.ctl(first.name, "relay-chains")
            if c["prev"] == sender.id and c["next"] == ch["hops"][1]]
    # A second chain on the same two hops (one being built beside the
    # ready one) asked for the same lifetime: the busiest is the ready one.
    assert recs, tn.ctl(first.name, "relay-chains")
    rec = max(recs, key=lambda c: c["cells_fwd"])
    return rec["age_ms"] + rec["expires_in_ms"], rec


def test_setup_like_a_client(net):
    """At its first hop relay1's loop chain is a chain from a relay, like any
    chain relay1 extends for a client, and its setup asked for what a
    client's asks: the same lifetime, from the same [chain] settings."""
    tn = loop_net(net, ("clientA", "client", "loop_interval", str(GAP_MS)))
    r, a = tn["relay1"], tn["clientA"]
    wait_for(lambda: r.status()["relay_loops_in"] >= 20 and a.status()["client_loops_in"] >= 20,
             15.0, "loops home at relay1 and clientA")
    life_r, rec_r = lifetime_at_first_hop(tn, r)
    life_a, rec_a = lifetime_at_first_hop(tn, a)
    print("lifetime asked at the first hop: relay1 %d ms, clientA %d ms" % (life_r, life_a))
    assert abs(life_r - life_a) <= 1000, (rec_r, rec_a)
    assert rec_r["exit"] == rec_a["exit"] == 0


def test_relay_loop_budget(net):
    """[node] cover_budget = 25 on relay1: its loops are cut to a quarter of
    the cells it sends, the rest skipped and counted."""
    tn = loop_net(net, ("relay1", "node", "cover_budget", "25"))
    r = tn["relay1"]
    wait_for(lambda: r.status()["relay_loops_skipped"] >= 50, 15.0, "loops skipped over budget")
    st = r.status()
    print("budget 25%%: %d cover of %d cells (%d of them padding), %d loops sent, %d skipped" % (
        st["cover_out"], st["cells_out"], st["padding_out"], st["relay_loops_out"],
        st["relay_loops_skipped"]))
    assert st["cover_out"] * 100 <= 25 * st["cells_out"] + 100, st
    assert st["cover_out"] == st["relay_loops_out"] + st["padding_out"], st
    assert st["cover_skipped"] >= st["relay_loops_skipped"], st


def test_config_refused(net):
    """ovld -t: loop_interval needs the relay role, and a bootstrap."""
    os.makedirs(net.dir, exist_ok=True)
    boot = "[bootstrap.b]\naddress = tcp://127.0.0.1:1\nid = %s\n" % ("a" * 52)
    cases = [
        ("[node]\nroles = client\n[relay]\nloop_interval = 20\n" + boot, "needs the relay role"),
        ("[node]\nroles = relay\n[relay]\nloop_interval = 20\n", "needs at least one [bootstrap"),
        ("[node]\nroles = relay\n[relay]\nloop_interval = 20\n" + boot, None),
        ("[node]\nroles = relay,client\n[relay]\nloop_interval = 20\n" + boot, None),
    ]
    for i, (text, err) in enumerate(cases):
        path = os.path.join(net.dir, "c%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([ovltest.OVLD, "-t", "-c", path], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        if err is None:
            assert p.returncode == 0, (text, p.stderr)
        else:
            assert p.returncode == 2 and err in p.stderr, (text, p.returncode, p.stderr)


if __name__ == "__main__":
    ovltest.run_tests("test_relay_cover_net", [test_relay_loops, test_setup_like_a_client,
                                               test_relay_loop_budget, test_config_refused])
