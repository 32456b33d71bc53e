"""Hidden destinations (suite "integration").

A testnet of 1 bootstrap, 6 relays and 2 hidden clients (ovl-testnet
--hidden: no listen address at all), each with a SOCKS5 listener and one
service, port 8080 of its .ovl name (Python's http.server in a thread).

- each client is hidden, listens nowhere, holds two introduction relays;
  no relay and no bootstrap has a link that names either client's
  identity (their links use throwaway ones);
- a lookup of a hidden client, at a client and at a relay, answers its
  inbound descriptor: its introduction relays, no address; the
  bootstrap's registry lists neither client;
- messages to a hidden client arrive once, are acknowledged, answered
  (anonymous replies) and sent back the other way;
- no relay's relay-chains names either client, the exits name the
  introduction relays they deliver through;
- curl fetches files from clientB's service through clientA's SOCKS port;
- inbound descriptors handed to the bootstrap by ovl-probe idesc: the
  expired, replayed, older, future, wrongly signed, malformed and
  relay-keyed ones are refused with their statuses and counted once each,
  and a lookup answers the newest one held;
- while clientA streams messages to clientB, one of clientB's
  introduction relays and the middle hop of its other inbound chain (which
  is then spliced: its relay's end is new, without the cookie) are killed:
  every message is acknowledged and clientB holds each exactly once, and
  clientB republishes a descriptor without the dead relay.

chain_cache_ttl is 2 s, as in test_chains: the bootstrap's cache of the
chains it handed out still names the killed relays for its lifetime, and
a client that asks again gets the same dead route until it expires.
"""

import hashlib
import os
import shutil

import ovltest
import sockstest
from ovltest import OVL_PROBE, wait_for

PORT = 8080
RELAYS = 6
BIG = 1 << 20


class Ctx:
    def __init__(self, net):
        self.root, self.files, self.httpd = sockstest.serve_files(dict((("big", BIG), ("small", 3000))), "ovl-hidden-")
        service = "%d=127.0.0.1:%d" % (PORT, self.httpd.server_address[1])
        self.tn = ovltest.testnet(net, relays=RELAYS, clients=2, socks=True, hidden=True,
                                  services=[service], heartbeat=1000, ttl=5000,
                                  chain_cache_ttl=2000, log_level=os.environ.get("OVL_LOG", "info"))
        self.a, self.b = self.tn["clientA"], self.tn["clientB"]
        self.relay_ids = {r.id for r in self.tn.relays()}

    def close(self):
        self.httpd.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def intros(node):
    """{relay id: (state, chain serial)} of node's introduction relays."""
    out = {}
    for item in (node.status().get("intro_relays") or "").split():
        rid, state, chain, _ = item.split(":")
        out[rid] = (state, int(chain))
    return out


def established(node):
    return {r for r, (state, _) in intros(node).items() if state == "established"}


def test_hidden_nodes(ctx):
    for n in (ctx.a, ctx.b):
        st = n.status()
        assert st["hidden"] == "yes", st
        assert not st.get("listen"), "a hidden node listens: %r" % st.get("listen")
        est = established(n)
        assert len(est) == 2 and est <= ctx.relay_ids, intros(n)
        assert st["idesc_seq"] > 0 and st["client_idesc_published"] >= 1, st
    # Nobody links to them by their identity.
    for node in ctx.tn.relays() + [ctx.tn["boot"]]:
        peers = {p.get("peer") for p in ctx.tn.ctl(node.name, "peers")}
        assert ctx.a.id not in peers and ctx.b.id not in peers, \
            "%s has a link naming a hidden client" % node.name


def test_lookup(ctx):
    want = {r for r in intros(ctx.b)}
    for at in (ctx.a.name, ctx.tn.relays()[0].name):
        d = ctx.tn.ctl(at, "lookup", ctx.b.id)
        assert d["kind"] == "hidden" and d["id"] == ctx.b.id, d
        assert d["uris"] == [], "a lookup gave an address: %r" % d
        assert set(d["intros"]) <= want | ctx.relay_ids and d["intros"], d
    listed = {r["id"] for r in ctx.tn.ctl("boot", "relays")}
    assert ctx.a.id not in listed and ctx.b.id not in listed, "the bootstrap lists a hidden node"
    # A relay is still looked up with its addresses.
    r = ctx.tn.ctl(ctx.a.name, "lookup", ctx.tn.relays()[1].id)
    assert r["kind"] == "node" and r["uris"], r


def test_messages(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    got_before = {m["id"] for m in tn.ctl(b.name, "recv", "--max", "1000")}
    sent = []
    for i in range(10):
        out = tn.ctl(a.name, "send", "--wait", "--reply", "--to", b.id, "hello %d" % i)
        sent.append(out["id"])
    got = {}
    wait_for(lambda: got.update({m["id"]: m for m in tn.ctl(b.name, "recv", "--max", "1000")})
             or set(sent) <= set(got), 30.0, "clientB to hold every message")
    assert not (set(got) & got_before)
    # Answer two of them on their way back, and send the other way.
    for mid in sent[:2]:
        tn.ctl(b.name, "reply", mid, "answer to " + mid)
    tn.ctl(b.name, "send", "--wait", "--to", a.id, "from the other side")
    back = []
    wait_for(lambda: back.extend(tn.ctl(a.name, "recv", "--max", "100")) or len(back) >= 3,
             30.0, "clientA to get two replies and a message")
    replies = [m for m in back if m.get("reply_to")]
    assert sorted(m["reply_to"] for m in replies) == sorted(sent[:2]), back
    assert b.status()["client_intro_cells_in"] > 0


def test_relay_chains(ctx):
    """No relay learns either client: the exits name introduction relays."""
    tn = ctx.tn
    for r in tn.relays():
        for ch in tn.ctl(r.name, "relay-chains"):
            for k, v in ch.items():
                assert v not in (ctx.a.id, ctx.b.id), "%s's relay-chains names %s in %s" % (
                    r.name, tn.name_of(v), k)


def test_socks(ctx):
    for name in ("small", "big"):
        url = "http://%s.ovl:%d/%s" % (ctx.b.id, PORT, name)
        r = sockstest.curl(ctx.a.socks, url, max_time=120)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == ctx.files[name], name
    assert ctx.b.status()["client_service_streams_opened"] >= 2


# What the bootstrap answers each of ovl-probe idesc's requests (status
# byte, docs/PROTOCOL.md 15.3) and the counter it moves (22.3).
IDESC_WANT = {
    "fresh": (0, "dir_idesc_accepted"),
    "replay": (5, "dir_idesc_replay"),
    "stale": (5, "dir_idesc_stale"),
    "newer": (0, "dir_idesc_accepted"),
    "expired": (1, "dir_idesc_expired"),
    "future": (1, "dir_idesc_future"),
    "badsig": (1, "dir_idesc_bad_sig"),
    "malformed": (1, "dir_idesc_bad"),
    "relay": (5, "dir_idesc_relay"),
}
IDESC_COUNTERS = sorted({c for _, c in IDESC_WANT.values()})


def idesc_probe(ctx):
    """Run ovl-probe idesc at the bootstrap, with relay1's key for the
    relay case; return ({name: status}, the hidden ID, counter deltas), or
    None when an exit passed a descriptor on meanwhile (a hidden client
    republishing moves the same counters)."""
    tn, boot = ctx.tn, ctx.tn["boot"]
    host, port = boot.listen.split("://")[-1].rsplit(":", 1)
    key = os.path.join(tn.relays()[0].data_dir, "identity.key")

    def passed():
        return sum(r.status().get("dir_idesc_published", 0) for r in tn.relays())

    p0, before = passed(), boot.status()
    r = ovltest.run([OVL_PROBE, "idesc", host, port, boot.id, "--relay-key", key,
                     "--timeout-ms", "30000"], timeout=60)
    after, p1 = boot.status(), passed()
    print("  ovl-probe idesc: exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    assert r.returncode == 0, "ovl-probe idesc did not get every reply"
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    if p1 != p0:
        return None
    got = {k: int(v) for k, v in lines.items() if k != "id"}
    return got, lines["id"], {c: after[c] - before[c] for c in IDESC_COUNTERS}


def test_bad_descriptors(ctx):
    """Inbound descriptors handed to the live bootstrap as a chain's exit
    hands them on (ovl-probe idesc): a fresh one and a newer one are held;
    the same one again, an older one, an expired one, one from the future,
    a wrongly signed one, a malformed one and one of a relay's key are
    refused, each with its status and counted once; a lookup then answers
    the newer one. An answer for another key than the one looked up is
    refused by the node looking up: no honest bootstrap serves one, so the
    unit tests cover it (tests/unit/test_dir.c, test_idesc.c)."""
    res = None
    for _ in range(3):
        res = idesc_probe(ctx)
        if res:
            break
        print("  a hidden client published meanwhile: again")
    assert res, "hidden clients kept publishing during every run"
    got, hid, delta = res
    assert got == {k: s for k, (s, _) in IDESC_WANT.items()}, got
    want = {c: sum(1 for _, cc in IDESC_WANT.values() if cc == c) for c in IDESC_COUNTERS}
    assert delta == want, "counter deltas %r, want %r" % (delta, want)
    d = ctx.tn.ctl(ctx.a.name, "lookup", hid)
    assert d["kind"] == "hidden" and d["id"] == hid, d
    assert int(d["seq"]) == 11 and d["uris"] == [], d


def explain(ctx):
    """What the relays and clientB counted of introductions, for a failure."""
    keys = ("relay_intros_active", "relay_intro_delivs_active", "relay_intro_cells_down",
            "relay_intro_cells_up", "relay_intro_unknown", "relay_hidden_delivs",
            "relay_hidden_gone", "relay_publishes", "relay_dropped_auth", "relay_dropped_queue_full")
    for r in ctx.tn.relays():
        try:
            st = r.status()
        except Exception as e:  # noqa: BLE001 - a killed relay
            print("%s: %s" % (r.name, e))
            continue
        print("%s: %s" % (r.name, " ".join("%s=%s" % (k[6:], st.get(k)) for k in keys)))
    st = ctx.b.status()
    print("clientB: intro_relays=%s idesc_seq=%s intro_cells_in=%s published=%s auth=%s" % (
        st.get("intro_relays"), st.get("idesc_seq"), st.get("client_intro_cells_in"),
        st.get("client_idesc_published"), st.get("client_dropped_auth")))
    print("lookup at clientA: %r" % ctx.tn.ctl(ctx.a.name, "lookup", ctx.b.id))
    boot = ctx.tn["boot"].status()
    print("boot: %s" % " ".join("%s=%s" % (k, v) for k, v in sorted(boot.items())
                                if k.startswith("dir_idesc")))
    for r in ctx.tn.relays():
        try:
            d = ctx.tn.ctl(r.name, "lookup", ctx.b.id)
            print("lookup at %s: seq %s intros %s" % (r.name, d.get("seq"), d.get("intros")))
        except Exception as e:  # noqa: BLE001 - a killed relay
            print("lookup at %s: %s" % (r.name, e))


def test_churn(ctx):
    """Kill one introduction relay of clientB and a hop of its other
    inbound chain while clientA sends: nothing acknowledged is lost,
    nothing arrives twice."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    tn.ctl(b.name, "recv", "--max", "1000")  # what earlier tests left
    seq0 = b.status()["idesc_seq"]
    ins = intros(b)
    victim_intro = sorted(ins)[0]
    other_serial = ins[sorted(ins)[1]][1]
    chains = {c["chain"]: c for c in tn.ctl(b.name, "chains")}
    hops = chains[other_serial]["hops"] if other_serial in chains else []
    # A middle hop: the hop before it splices new hops in up to the
    # introduction relay, which then holds a new chain without the cookie.
    victim_hop = next((h for h in hops[1:-1] + hops[:1] if h != victim_intro), None)
    victims = [tn.name_of(victim_intro)] + ([tn.name_of(victim_hop)] if victim_hop else [])
    def kill():
        for v in victims:
            tn.kill(v)
        print("killed %s" % " ".join(victims))

    try:
        ovltest.stream_through(tn, a, b, "churn", kill)
    except AssertionError:
        explain(ctx)
        raise
    wait_for(lambda: len(established(b)) == 2 and victim_intro not in established(b), 60.0,
             "clientB to replace its dead introduction relay")
    wait_for(lambda: b.status()["idesc_seq"] > seq0, 30.0, "clientB to republish")


TESTS = [test_hidden_nodes, test_lookup, test_messages, test_relay_chains, test_socks,
         test_bad_descriptors, test_churn]

if __name__ == "__main__":
    sockstest.main("test_hidden", TESTS, Ctx)
