"""Three bootstraps, one directory (docs/PROTOCOL.md 16.9).

Every node names all three bootstraps; relays and clients register with
each, and each bootstrap pulls the others' registrations (DIR_SYNC).
While clientA streams messages to clientB, two bootstraps are killed:
every message arrives, every relay and client stays registered with the
survivor, and a new chain is built through it. Then one killed bootstrap
comes back with its data directory: it has loaded its registry from
disk (dir_registry_loaded), lists the relays at once, and syncs with the
survivor again. Last every bootstrap is killed, and clientA restarted:
it builds its chains from the relay list it kept on disk.

test_replication: nodes that name only one of two bootstraps are known to
the other as copies pulled from it (DIR_SYNC): listed, drawn, reached.
"""

import os
import struct

import ovltest
from ovltest import wait_for

RELAYS, CLIENTS = 5, 2


def direct(st):
    """(relays, endpoints) registered with this bootstrap itself, not copies."""
    return (st["dir_relays"] - st["dir_relays_replicated"],
            st["dir_endpoints"] - st["dir_endpoints_replicated"])


def registry_file_count(node):
    """How many descriptors node's data_dir/registry holds (0 if none yet)."""
    try:
        with open(os.path.join(node.data_dir, "registry"), "rb") as f:
            head = f.read(5)
    except FileNotFoundError:
        return 0
    return struct.unpack("<I", head[1:5])[0] if len(head) == 5 and head[0] == 1 else 0


def ready_chains(tn, name):
    return [c for c in tn.ctl(name, "chains") if c["state"] == "ready"]


def test_bootstraps(net):
    tn = ovltest.testnet(net, relays=RELAYS, clients=CLIENTS, bootstraps=3, chain_length=3)
    a, b = tn["clientA"], tn["clientB"]
    boots = tn.bootstraps()
    assert [n.name for n in boots] == ["boot", "boot2", "boot3"]
    # The first configured bootstraps die; the last one, which every node
    # asks only after the others, survives.
    victims, survivor = boots[:2], boots[2]

    wait_for(lambda: all(direct(n.status()) == (RELAYS, CLIENTS) for n in boots), 30.0,
             "every relay and client to register with every bootstrap")
    wait_for(lambda: all(n.status()["dir_syncs_ok"] >= 2 and n.status()["dir_syncs_served"] >= 2
                         for n in boots), 30.0, "every bootstrap to sync with the others")
    for n in boots:
        st = n.status()
        assert st["dir_syncs_refused"] == 0 and st["dir_syncs_failed"] == 0, st
        assert st["peers_configured"] == 2, st  # its own entry is no peer
    wait_for(lambda: registry_file_count(victims[0]) == RELAYS + CLIENTS, 30.0,
             "boot to write its registry to disk")
    wait_for(lambda: ready_chains(tn, a.name), 30.0, "clientA to have a ready chain")

    served0 = survivor.status()["dir_requests_in"]

    def kill():
        for v in victims:
            tn.kill(v.name)
        print("  killed %s while streaming" % " ".join(v.name for v in victims))

    ovltest.stream_through(tn, a, b, "through the survivor", kill)

    # Relays and clients are registered with the survivor, and still
    # count as registered; nothing is held there as a copy of the dead.
    wait_for(lambda: direct(survivor.status()) == (RELAYS, CLIENTS), 30.0,
             "every relay and client registered with %s" % survivor.name)
    for n in tn.relays() + tn.clients():
        assert n.status()["dir_registered"] == 1, n.name

    # A new chain is built through the survivor's directory.
    last = max(c["chain"] for c in ready_chains(tn, a.name))
    gen0 = survivor.status()["dir_chains_generated"]
    wait_for(lambda: tn.ctl_run(a.name, "new-chain").returncode == 0, 10.0,
             "clientA to take new-chain (not busy building one)")
    wait_for(lambda: [c for c in ready_chains(tn, a.name) if c["chain"] > last], 60.0,
             "a new chain on clientA")
    st = survivor.status()
    assert st["dir_requests_in"] > served0, st
    assert st["dir_chains_generated"] > gen0 or st["dir_chains_cached"] > 0, st
    out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "on the new chain")
    assert out.get("result") == "delivered", out

    # The first bootstrap comes back from its data directory.
    back = victims[0]
    saves0 = survivor.status()["dir_syncs_served"]
    tn.restart(back.name)
    st = wait_for(back.status, 30.0, "%s to answer" % back.name)
    assert st["dir_registry_loaded"] == RELAYS + CLIENTS, st
    listed = {r["id"] for r in tn.ctl(back.name, "relays")}
    assert {n.id for n in tn.relays()} <= listed, listed
    wait_for(lambda: back.status()["dir_syncs_ok"] > 0, 30.0,
             "%s to sync with %s" % (back.name, survivor.name))
    wait_for(lambda: survivor.status()["dir_syncs_served"] > saves0, 30.0,
             "%s to answer %s's sync" % (survivor.name, back.name))
    wait_for(lambda: direct(back.status()) == (RELAYS, CLIENTS), 30.0,
             "every relay and client to register with %s again" % back.name)

    # Every bootstrap down: a client restarted then builds its chains from
    # the relay list it kept on disk (docs/PROTOCOL.md 16.7).
    # The list on disk is the one it holds once that names every relay (a
    # longer list is written at once).
    wait_for(lambda: a.status()["dir_list_relays"] == RELAYS and a.status()["dir_lists_saved"] >= 1,
             60.0, "clientA to keep a relay list naming every relay")
    # Relays reach next hops they have no link to through theirs.
    wait_for(lambda: all(r.status()["dir_list_relays"] > 0 for r in tn.relays()), 60.0,
             "every relay to hold a relay list")
    for v in (back, survivor, a):
        tn.kill(v.name)
    print("  killed every bootstrap, and clientA")
    tn.restart(a.name)
    st = wait_for(a.status, 30.0, "clientA to answer after its restart")
    assert st["dir_list_restored"] == 1, st
    wait_for(lambda: ready_chains(tn, a.name), 60.0, "clientA to build a chain with no bootstrap")
    st = a.status()
    assert st["dir_list_fallbacks"] >= 1 and st["client_routes_local"] >= 1, st
    print("  clientA after its restart: %d lists from disk or memory, %d routes picked locally" % (
        st["dir_list_fallbacks"], st["client_routes_local"]))


def relays_of(tn, boot):
    return {r["id"]: r for r in tn.ctl(boot.name, "relays")}


def test_replication(net):
    """relay4 and clientB name only boot2, clientA only boot: boot holds
    them as copies from boot2, lists relay4 and draws it into clientA's
    chains, and answers clientA's side with clientB's descriptor, so a
    message arrives; relay4 killed, boot's copy goes within a ttl."""
    tn = ovltest.testnet(net, relays=4, clients=2, bootstraps=2, chain_length=3,
                         chain_backups=0, bootstraps_of={"relay4": ["boot2"],
                                                         "clientB": ["boot2"],
                                                         "clientA": ["boot"]})
    boot, boot2 = tn["boot"], tn["boot2"]
    a, b, r4 = tn["clientA"], tn["clientB"], tn["relay4"]
    wait_for(lambda: relays_of(tn, boot).get(r4.id, {}).get("origin") == boot2.id, 30.0,
             "boot to hold relay4 as a copy from boot2")
    assert "origin" not in relays_of(tn, boot2)[r4.id]  # registered there: no copy
    # clientB may register with boot2 after relay4 did: its copy comes with
    # a later sync, so wait for it too before counting.
    wait_for(lambda: boot.status()["dir_endpoints_replicated"] >= 1, 30.0,
             "boot to hold clientB as a copy from boot2")
    st = boot.status()
    assert st["dir_relays_replicated"] == 1 and st["dir_endpoints_replicated"] == 1, st

    out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "to a node boot knows by its copy")
    assert out.get("result") == "delivered", out

    def drawn():
        hops = {h for c in ready_chains(tn, a.name) for h in c["hops"]}
        if r4.id in hops:
            return True
        tn.ctl_run(a.name, "new-chain")  # busy building: the next poll asks again
        return False

    wait_for(drawn, 60.0, "relay4, known to boot as a copy, in a chain of clientA's")

    tn.kill(r4.name)
    wait_for(lambda: r4.id not in relays_of(tn, boot), 30.0, "boot to drop its copy of relay4")


if __name__ == "__main__":
    ovltest.run_tests("test_bootstraps", [test_bootstraps, test_replication])
