"""Hidden nodes publish no address (suite "anonymity").

A testnet of 1 bootstrap, 4 relays and 3 hidden clients (ovl-testnet
--hidden). For every hidden client:

- it never registered a descriptor (the only object that carries
  addresses) with any bootstrap, and the bootstrap's registry, which
  `ovlctl relays` lists whole, holds none for it;
- every node's lookup of it, relays and the other clients alike, answers
  an inbound descriptor with no address, and none of the addresses its
  links use (ovlctl peers: local and remote) appears in any reply;
- its links, seen from every relay and the bootstrap, never carry its
  identity.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402


def fixture(net):
    return ovltest.testnet(net, relays=4, clients=3, hidden=True, heartbeat=1000, ttl=5000)


def test_no_address(tn):
    hidden = tn.clients()
    published = {r["id"]: r for r in tn.ctl("boot", "relays")}
    others = [n for n in tn.nodes if n.role != "bootstrap"]
    for h in hidden:
        st = h.status()
        assert st["hidden"] == "yes" and st["dir_registrations_ok"] == 0, st
        assert h.id not in published, "the bootstrap holds a descriptor of %s" % h.name
        # The addresses its own links use: none may come back in a reply.
        addrs = set()
        for p in tn.ctl(h.name, "peers"):
            for k in ("local", "remote", "address", "uri"):
                if p.get(k):
                    addrs.add(str(p[k]))
        for n in others:
            if n is h:
                continue
            d = tn.ctl(n.name, "lookup", h.id)
            assert d["kind"] == "hidden" and d["uris"] == [], (n.name, d)
            text = repr(d)
            for a in addrs:
                assert a not in text, "%s's lookup of %s shows %s" % (n.name, h.name, a)
        for n in tn.relays() + [tn["boot"]]:
            peers = {p.get("peer") for p in tn.ctl(n.name, "peers")}
            assert h.id not in peers, "%s links to %s under its identity" % (n.name, h.name)


if __name__ == "__main__":
    ovltest.run_tests("test_hidden_net", [test_no_address], fixture=fixture)
