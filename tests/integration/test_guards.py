"""Entry guards and the relay list on disk, on a testnet of 1 bootstrap,
6 relays and 2 clients (docs/PROTOCOL.md 16.7, 19.14).

In order, on one network: every chain of each client starts at its guard
(the first one `ovlctl status` shows up), fresh chains included; the
guards survive a restart of clientA (read back from <data_dir>/guards, in
the same order) and its chains still start at the same guard; then, with
the bootstrap killed, clientA restarted again takes the relay list it kept
on disk, builds chains from it, still through its guard, and its loop
cover comes back through them, while the relays reach each other's next
hops from the lists they keep too.
"""

import ovltest
from ovltest import wait_for

RELAYS = 6
GUARDS = 3
HEARTBEAT_MS = 1000
TTL_MS = 5000


class Ctx:
    def __init__(self, tn):
        self.tn, self.a, self.b = tn, tn["clientA"], tn["clientB"]


def fixture(net):
    tn = ovltest.testnet(net, relays=RELAYS, clients=2, heartbeat=HEARTBEAT_MS, ttl=TTL_MS,
                         request_timeout=1000, chain_length=3,
                         extra=[("client", "client", "guards", GUARDS),
                                ("client", "client", "loop_interval", 200)])
    return Ctx(tn)


def guards_of(node):
    """(ids in order, states in order, the guard in use) from status."""
    st = node.status()
    pairs = [g.rsplit(":", 1) for g in (st.get("guards") or "").split()]
    return [p[0] for p in pairs], [p[1] for p in pairs], st.get("guard") or None


def guards_up(node):
    ids, states, first = guards_of(node)
    return (ids, first) if len(ids) == GUARDS and all(s == "up" for s in states) and first else None


def ready_chains(tn, name):
    return [c for c in tn.ctl(name, "chains") if c["state"] in ("ready", "retiring")]


def fresh_chain(tn, name):
    """Ask for new-chain and return the chain it built, once ready."""
    last = max([c["chain"] for c in tn.ctl(name, "chains")] or [0])
    wait_for(lambda: tn.ctl_run(name, "new-chain").returncode == 0, 20.0,
             "%s to take new-chain" % name)
    return wait_for(lambda: next((c for c in tn.ctl(name, "chains")
                                  if c["state"] == "ready" and c["chain"] > last), None),
                    30.0, "%s's new chain" % name)


def check_first_hops(tn, name, guard):
    for c in ready_chains(tn, name):
        assert c["hops"][0] == guard, "%s chain %d starts at %s, not its guard %s" % (
            name, c["chain"], tn.name_of(c["hops"][0]), tn.name_of(guard))
        assert guard not in c["hops"][1:], "%s chain %d crosses its guard twice" % (
            name, c["chain"])


def test_guard_is_first_hop(ctx):
    tn = ctx.tn
    for node in (ctx.a, ctx.b):
        ids, guard = wait_for(lambda: guards_up(node), 30.0, "%s's guards" % node.name)
        relay_ids = {r.id for r in tn.relays()}
        assert set(ids) <= relay_ids and len(set(ids)) == GUARDS, ids
        wait_for(lambda: ready_chains(tn, node.name) or None, 30.0, "%s's chain" % node.name)
        middles = set()
        for _ in range(4):
            c = fresh_chain(tn, node.name)
            assert c["hops"][0] == guard, c
            middles.update(c["hops"][1:])
        check_first_hops(tn, node.name, guard)
        st = node.status()
        assert st["client_guards"] == GUARDS and st["client_guards_sampled"] >= GUARDS, st
        print("%s: guards %s, first %s; middle hops seen %s" % (
            node.name, [tn.name_of(i) for i in ids], tn.name_of(guard),
            sorted(tn.name_of(m) for m in middles)))
    out = tn.ctl(ctx.a.name, "send", "--wait", "--to", ctx.b.id, "through the guard")
    assert out.get("result") == "delivered", out


def test_guards_survive_restart(ctx):
    tn, a = ctx.tn, ctx.a
    before, _, guard = guards_of(a)
    assert len(before) == GUARDS and guard
    tn.kill(a.name)
    tn.restart(a.name)
    wait_for(lambda: a.status().get("dir_registered") == 1, 30.0, "clientA to register again")
    st = a.status()
    assert st["client_guards_loaded"] == GUARDS, st
    ids, _, _ = wait_for(lambda: (lambda g: g if g[2] else None)(guards_of(a)), 30.0,
                         "clientA's guards listed again")
    assert ids == before, "guards %s became %s" % (before, ids)
    assert a.status()["client_guards_sampled"] == 0, "a guard was sampled anew"
    c = fresh_chain(tn, a.name)
    assert c["hops"][0] == guard, c
    check_first_hops(tn, a.name, guard)
    # The list this restart fetched reached the disk: the next test uses it.
    wait_for(lambda: a.status()["dir_lists_saved"] >= 1, 30.0, "clientA to keep its list")
    out = tn.ctl(a.name, "send", "--wait", "--to", ctx.b.id, "after a restart")
    assert out.get("result") == "delivered", out


def test_chains_from_disk_without_bootstrap(ctx):
    tn, a = ctx.tn, ctx.a
    _, _, guard = guards_of(a)
    st = a.status()
    assert st["dir_list_relays"] == RELAYS, st
    # The relays hold the full list too (their own refresh), so each can
    # reach a next hop it has no link to without the bootstrap.
    for r in tn.relays():
        wait_for(lambda: r.status().get("dir_list_relays") == RELAYS, 90.0,
                 "%s to hold the whole relay list" % r.name)
    tn.kill("boot")
    tn.kill(a.name)
    tn.restart(a.name)
    wait_for(lambda: a.status().get("dir_list_restored") == 1, 30.0,
             "clientA to take the list on disk")
    c = wait_for(lambda: next(iter(ready_chains(tn, a.name)), None), 60.0,
                 "a chain built without the bootstrap")
    assert c["hops"][0] == guard, (c, guard)
    st = a.status()
    assert st["dir_list_fallbacks"] >= 1, st
    assert st["client_routes_local"] >= 1, st
    loops = st["client_loops_in"]
    wait_for(lambda: a.status()["client_loops_in"] > loops + 5, 30.0,
             "clientA's loop cover to come back through it")
    c = fresh_chain(tn, a.name)
    assert c["hops"][0] == guard, c
    print("without the bootstrap: chain %s, %d lists from disk" % (
        [tn.name_of(h) for h in c["hops"]], a.status()["dir_list_fallbacks"]))


TESTS = [test_guard_is_first_hop, test_guards_survive_restart,
         test_chains_from_disk_without_bootstrap]

if __name__ == "__main__":
    ovltest.run_tests("test_guards", TESTS, fixture=fixture)
