"""Streams on chains by class and by exit policy (suite "integration").

A testnet of 1 bootstrap, 4 relays and clientA with a SOCKS5 listener.
Exit policies differ per relay: relay1 and relay2 accept web server A's
port, relay3 accepts A's and B's, relay4 is no exit. Web servers A and B
are Python's http.server in threads. clientA keeps at most 4 lines of
chains ([client] max_chains) and ends a line after 3 s without streams.

- two SOCKS credentials get different chains, and their streams work;
  the same credentials again share their chain;
- streams without credentials share one chain;
- a target only relay3 accepts goes through a chain ending at relay3;
- a target no exit accepts gets reply 0x02 at once: no stream frame
  leaves, no exit hears of it;
- at the cap, a new class of credentials gets 0x01 while every line has
  streams; lines without streams end after chain_idle;
- on a second testnet whose clients pick their hops themselves and whose
  chains live 10 s, a stream of a class outlives its chain's replacement:
  the new chain ends at the same exit.
"""

import os
import shutil
import tempfile

import ovltest
import sockstest
from ovltest import wait_for

BODY = os.urandom(5000)


class Ctx:
    def __init__(self, net):
        self.root = tempfile.mkdtemp(prefix="ovl-www-")
        with open(os.path.join(self.root, "small"), "wb") as f:
            f.write(BODY)
        self.www = [sockstest.web_server(self.root), sockstest.web_server(self.root)]
        self.pa, self.pb = (h.server_address[1] for h in self.www)
        self.pc = sockstest.closed_port()  # and no policy names it
        a = "accept 127.0.0.1:%d" % self.pa
        b = "accept 127.0.0.1:%d" % self.pb
        extra = [("relay1", "exit", "policy", a + ", reject *:*"),
                 ("relay2", "exit", "policy", a + ", reject *:*"),
                 ("relay3", "exit", "policy", a + ", " + b + ", reject *:*"),
                 ("clientA", "client", "max_chains", "4"),
                 ("clientA", "client", "chain_idle", "3000")]
        self.tn = ovltest.testnet(net, relays=4, clients=1, socks=True, extra=extra)
        self.a = self.tn["clientA"]

    def close(self):
        for h in self.www:
            h.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    def chains(self):
        return self.tn.ctl("clientA", "chains")


def fetch(s):
    """GET /small on an open stream; the body must be the file's."""
    s.sendall(b"GET /small HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.split(b"\r\n\r\n", 1)[1] == BODY, "the body differs"


def opened(ctx, host, port, cred=None):
    code, s = sockstest.socks_open(ctx.a.socks, host, port, cred)
    assert code == 0, "CONNECT %s:%d with %r: reply %#x" % (host, port, cred, code)
    return s


def carrying(ctx):
    """{chain serial: chain} of the chains that carry streams now."""
    return {c["chain"]: c for c in ctx.chains() if c["streams"] > 0}


def quiet(ctx):
    """Wait for the streams of the tests before to end (a finished stream
    lingers 3 s for a repeated FIN)."""
    wait_for(lambda: not carrying(ctx), 30.0, "no stream left on any chain")


def test_credentials(ctx):
    alice = opened(ctx, "127.0.0.1", ctx.pa, ("alice", "1"))
    bob = opened(ctx, "127.0.0.1", ctx.pa, ("bob", "1"))
    alice2 = opened(ctx, "127.0.0.1", ctx.pa, ("alice", "1"))
    ch = [c for c in carrying(ctx).values() if c["class"] != "default"]
    assert len(ch) == 2, "two classes, two chains: %r" % ch
    assert ch[0]["class"] != ch[1]["class"], ch
    assert sorted(c["streams"] for c in ch) == [1, 2], "alice's two streams share: %r" % ch
    for c in ch:
        assert c["class"].startswith("k") and "alice" not in c["class"], c
    for s in (alice, bob, alice2):
        fetch(s)


def test_no_credentials_share(ctx):
    quiet(ctx)
    s1 = opened(ctx, "127.0.0.1", ctx.pa)
    s2 = opened(ctx, "localhost", ctx.pa)
    ch = [c for c in carrying(ctx).values() if c["class"] == "default"]
    assert len(ch) == 1 and ch[0]["streams"] == 2, "one chain for both: %r" % ch
    fetch(s1)
    fetch(s2)


def test_only_some_exits(ctx):
    relay3 = ctx.tn["relay3"].id
    before = ctx.tn["relay3"].status()["relay_streams_opened"]
    for cred in (None, ("carol", "x")):
        quiet(ctx)
        s = opened(ctx, "127.0.0.1", ctx.pb, cred)
        ch = list(carrying(ctx).values())
        assert len(ch) == 1 and ch[0]["hops"][-1] == relay3, \
            "a stream to B goes through relay3: %r" % ch
        assert (ch[0]["class"] == "default") == (cred is None), ch
        fetch(s)
    assert ctx.tn["relay3"].status()["relay_streams_opened"] >= before + 2


def test_no_exit(ctx):
    st0 = ctx.a.status()
    refused0 = sum(ctx.tn[r.name].status()["relay_streams_refused_policy"]
                   for r in ctx.tn.relays())
    for host in ("127.0.0.1", "localhost"):
        for cred in (None, ("dave", "x")):
            code, s = sockstest.socks_open(ctx.a.socks, host, ctx.pc, cred)
            s.close()
            assert code == 0x02, "%s:%d, no exit takes it: reply %#x" % (host, ctx.pc, code)
    st = ctx.a.status()
    assert st["client_streams_no_exit"] == st0["client_streams_no_exit"] + 4, st
    assert st["client_stream_cells_out"] == st0["client_stream_cells_out"], \
        "a refused stream sent frames"
    refused = sum(ctx.tn[r.name].status()["relay_streams_refused_policy"]
                  for r in ctx.tn.relays())
    assert refused == refused0, "an exit heard of a stream no exit takes"


def test_cap_and_idle(ctx):
    quiet(ctx)
    held = [opened(ctx, "127.0.0.1", ctx.pa, ("user%d" % i, "x")) for i in range(3)]
    # The main line and three classes with streams: max_chains is full.
    refused0 = ctx.a.status()["client_socks_refused"]
    code, s = sockstest.socks_open(ctx.a.socks, "127.0.0.1", ctx.pa, ("user3", "x"))
    s.close()
    assert code == 0x01, "a fourth class at the cap: reply %#x" % code
    assert ctx.a.status()["client_socks_refused"] == refused0 + 1
    for s in held:
        fetch(s)
    # Without streams their lines end after chain_idle, chains and all.
    wait_for(lambda: all(c["class"] == "default" for c in ctx.chains()), 30.0,
             "the idle lines to end")
    s = opened(ctx, "127.0.0.1", ctx.pa, ("user3", "x"))
    fetch(s)


def test_replacement(ctx):
    net = ovltest.Net("isolation_replacement")
    ok = False
    try:
        policy = "accept 127.0.0.1:%d, reject *:*" % ctx.pa
        # Hops picked by the client here (chain_source local): the exit
        # goes last, the other hops are drawn among the rest.
        tn = ovltest.testnet(net, relays=3, clients=1, socks=True, chain_lifetime=10000,
                             chain_source="local", extra=[("relay", "exit", "policy", policy)])
        code, s = sockstest.socks_open(tn["clientA"].socks, "127.0.0.1", ctx.pa, ("erin", "x"))
        assert code == 0, code

        def chain_of_stream():
            ch = [c for c in tn.ctl("clientA", "chains") if c["streams"] > 0]
            return ch[0] if len(ch) == 1 else None

        wait_for(chain_of_stream, 10.0, "the stream's chain")
        old = chain_of_stream()
        # Replaced at 80 % of its 10 s, with the stream moved onto the new one.
        wait_for(lambda: (chain_of_stream() or old)["chain"] != old["chain"], 30.0,
                 "the chain's replacement")
        new = chain_of_stream()
        assert new["class"] == old["class"] and new["hops"][-1] == old["hops"][-1], (old, new)
        fetch(s)
        ok = True
    finally:
        problems = net.close(failed=not ok)
    assert not problems, problems


TESTS = [test_credentials, test_no_credentials_share, test_only_some_exits, test_no_exit,
         test_cap_and_idle, test_replacement]

if __name__ == "__main__":
    sockstest.main("test_isolation", TESTS, Ctx, need_curl=False)
