"""Reload of a running node's configuration (suite "integration").

A testnet of 1 bootstrap, 3 relays and 2 clients with SOCKS5 ports; every
relay is an exit to an echo server and a web server of the test's own.
Each change is made twice, once applied by `kill -HUP <pid>` and once by
`ovlctl reload` (a HUP's reload is waited for on the reloads counter):

- clientA's log level, its cover rate (cover cells start, and stop: none
  is sent while a message goes and is acknowledged), a SOCKS listener
  added (curl through it) and removed (it refuses connections, and a
  stream it took keeps echoing), and the relays' exit policy (a new stream
  to the echo port is refused with 0x02, a stream opened before keeps
  echoing, the bootstrap lists the new policy) take effect;
- across every reload the chains and links stay: clientA's chain serials,
  the relays' chains and every node's open links are the same after, and
  messages sent while the reload happens arrive, each once;
- a reload of an unchanged file changes nothing and says so; a changed
  key that takes a restart ([node] data_dir) is reported and kept;
- a new SOCKS address another process holds fails the client step, which
  changes nothing, while the log step applies; ovlctl reload exits 1;
- a relay's [relay] rate and clientA's [node] rate set and lifted, in
  force at once with chains and links kept;
- [metrics] listen set, moved, refused (the old listener comes back) and
  removed;
- a bootstrap removed from clientA's config is no longer dialed nor told
  of clientA (its link stays), and added again hears of it at once;
- a file with a syntax error or a bad value is refused with file:line,
  counted, and the node runs on with its settings.
"""

import json
import os
import re
import shutil
import signal
import socket
import urllib.request

import ovltest
import sockstest
from ovltest import wait_for

RELAYS = 3


def echo(c):
    """A TCP echo server's connection (sockstest.TcpServer)."""
    while True:
        try:
            b = c.recv(65536)
        except OSError:
            return
        if not b:
            return
        c.sendall(b)


def echo_once(s, data):
    """Send data on an open SOCKS stream to the echo server; read it back."""
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(len(data) - len(got))
        assert chunk, "the stream closed after %d of %d bytes" % (len(got), len(data))
        got += chunk
    assert got == data, "the echo differs"


class Ctx:
    def __init__(self, net):
        self.root, self.files, self.httpd = sockstest.serve_files({"f": 100000}, "ovl-rl-")
        self.web = self.httpd.server_address[1]
        self.echo = sockstest.TcpServer(echo)
        self.policy_open = "accept 127.0.0.1:%d, accept 127.0.0.1:%d, reject *:*" % (
            self.web, self.echo.port)
        self.policy_closed = "accept 127.0.0.1:%d, reject *:*" % self.web
        # Chains and lines that end by themselves while a test runs would
        # look like chains a reload closed: they last longer than it.
        self.tn = ovltest.testnet(net, relays=RELAYS, clients=2, socks=True, bootstraps=2,
                                  exit_policy=self.policy_open, chain_lifetime=3000000,
                                  extra=[("client", "client", "chain_idle", "3600000")])
        self.a, self.b = self.tn["clientA"], self.tn["clientB"]
        wait_for(lambda: any(c["state"] == "ready" for c in self.tn.ctl("clientA", "chains")),
                 10.0, "clientA's chain")

    def close(self):
        self.echo.close()
        self.httpd.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


# -- reloading and what must not move -----------------------------------

def hup(tn, name):
    """kill -HUP the node; wait until its reload ran (taken or refused)."""
    n = tn[name]
    st = n.status()
    before = st["reloads"] + st["reloads_refused"]
    os.kill(n.pid, signal.SIGHUP)
    wait_for(lambda: (lambda s: s["reloads"] + s["reloads_refused"] > before)(n.status()),
             10.0, "%s's reload after SIGHUP" % name)


def ctl_reload(tn, name):
    """ovlctl reload; return its report."""
    return tn.ctl(name, "reload")


TRIGGERS = {"hup": hup, "ctl": ctl_reload}


def snapshot(ctx):
    """What a reload must leave alone: clientA's chains, the relays'
    chains, every node's open links."""
    tn = ctx.tn
    snap = {"chainsA": sorted(c["chain"] for c in tn.ctl("clientA", "chains"))}
    for r in tn.relays():
        snap[r.name] = sorted((c["prev"], c["next"], c["exit"])
                              for c in tn.ctl(r.name, "relay-chains"))
    for n in tn.nodes:
        snap["links " + n.name] = sorted(p["peer"] for p in tn.ctl(n.name, "peers")
                                         if p.get("state") == "open")
    return snap


def reload_keeping(ctx, name, how, during=None):
    """Reload node name (how: "hup" or "ctl") while messages go from
    clientA to clientB; check that every one arrives once and that chains
    and links are as they were. Return the report of ovlctl reload (None
    for a HUP)."""
    out = []
    before = snapshot(ctx)

    def go():
        out.append(TRIGGERS[how](ctx.tn, name))
        if during:
            during()

    ovltest.stream_through(ctx.tn, ctx.a, ctx.b, "reload %s %s" % (name, how), go,
                           count=20, at=10)
    after = snapshot(ctx)
    assert after["chainsA"] == before["chainsA"], (before, after)
    for k, v in before.items():  # others' traffic may add some; none went
        assert set(v) <= set(after[k]), "%s: %r went in a reload" % (k, set(v) - set(after[k]))
    return out[0]


# -- the changes -----------------------------------------------------------

def check_log_level(ctx, how):
    tn = ctx.tn
    want = "debug" if ctx.a.status()["log_level"] != "debug" else "warn"
    tn.configure("clientA", "log", "level", want)
    rep = reload_keeping(ctx, "clientA", how)
    assert ctx.a.status()["log_level"] == want
    if rep is not None:
        assert rep["changed"] == ["log.level"] and rep["restart"] == [], rep


def test_log_level_override(ctx):
    """ovlctl log-level lasts until a reload puts back the file's level."""
    tn = ctx.tn
    level = ctx.a.status()["log_level"]
    other = "error" if level != "error" else "info"
    tn.ctl("clientA", "log-level", other)
    rep = ctl_reload(tn, "clientA")
    assert rep["changed"] == ["log.level"], rep
    assert ctx.a.status()["log_level"] == level


def check_cover(ctx, how):
    """Drop cover at a 20 ms mean gap: cells go; then off: none goes while a
    message is sent and acknowledged."""
    tn = ctx.tn
    tn.configure("clientA", "client", "cover_interval", "20")
    reload_keeping(ctx, "clientA", how)
    c0 = ctx.a.status()["client_cover_out"]
    wait_for(lambda: ctx.a.status()["client_cover_out"] >= c0 + 25, 10.0, "drop cover")
    tn.configure("clientA", "client", "cover_interval", None)
    reload_keeping(ctx, "clientA", how)
    c1 = ctx.a.status()["client_cover_out"]
    tn.ctl("clientA", "send", "--wait", "--to", ctx.b.id, "after the cover")
    assert ctx.a.status()["client_cover_out"] == c1, "cover went on after it was turned off"


def socks_addrs(ctx):
    return ctx.a.status()["socks"].split(" ")


def check_socks(ctx, how):
    """A second listener: curl through it; an echo stream opened through it;
    then removed: it refuses connections, the stream goes on, the first
    listener serves."""
    tn = ctx.tn
    tn.configure("clientA", "socks", "listen", ["%s" % ctx.a.socks, "127.0.0.1:0"])
    rep = reload_keeping(ctx, "clientA", how)
    if rep is not None:
        assert rep["changed"] == ["socks.listen"], rep
    addrs = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(socks_addrs(ctx)), 10.0,
                     "the second SOCKS listener")
    second = addrs[1][len("tcp://"):]
    r = sockstest.curl(second, "http://127.0.0.1:%d/f" % ctx.web)
    assert r.returncode == 0, r.stderr
    code, s = sockstest.socks_open(second, "127.0.0.1", ctx.echo.port)
    assert code == 0, "echo through the new listener: reply %#x" % code
    with s:
        echo_once(s, b"before the listener goes" * 10)
        tn.configure("clientA", "socks", "listen", ctx.a.socks)  # the testnet's one
        rep = reload_keeping(ctx, "clientA", how)
        assert socks_addrs(ctx) == addrs[:1], socks_addrs(ctx)
        host, port = second.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            raise AssertionError("the removed listener %s still takes connections" % second)
        except ConnectionRefusedError:
            pass
        echo_once(s, b"after the listener went" * 10)  # its stream goes on
    r = sockstest.curl(ctx.a.socks, "http://127.0.0.1:%d/f" % ctx.web)
    assert r.returncode == 0, r.stderr


def listed_policies(ctx):
    return {r["id"]: r.get("policy", "") for r in ctx.tn.ctl("boot", "relays")
            if "exit" in r["flags"]}


def check_policy(ctx, how):
    """The exits stop taking the echo port: a new stream to it is refused,
    one open before goes on; the bootstrap lists the new policy. Then
    back."""
    tn = ctx.tn
    code, s = sockstest.socks_open(ctx.a.socks, "127.0.0.1", ctx.echo.port)
    assert code == 0, "echo before the change: reply %#x" % code
    with s:
        refused0 = sum(tn[r.name].status()["relay_streams_refused_policy"] for r in tn.relays())
        for r in tn.relays():
            tn.configure(r.name, "exit", "policy", ctx.policy_closed)
            rep = reload_keeping(ctx, r.name, how)
            if rep is not None:
                assert rep["changed"] == ["exit.policy"], rep
        echo = ":%d" % ctx.echo.port
        wait_for(lambda: (lambda p: len(p) == RELAYS and not any(echo in v for v in p.values()))(
            listed_policies(ctx)), 10.0, "the bootstrap listing the new policy")
        code, s2 = sockstest.socks_open(ctx.a.socks, "127.0.0.1", ctx.echo.port)
        s2.close()
        assert code == 0x02, "a port the new policy rejects: reply %#x" % code
        refused = sum(tn[r.name].status()["relay_streams_refused_policy"] for r in tn.relays())
        st = ctx.a.status()
        assert refused > refused0 or st["client_streams_no_exit"] > 0, (refused, st)
        echo_once(s, b"opened under the old policy" * 10)
    for r in tn.relays():
        tn.configure(r.name, "exit", "policy", ctx.policy_open)
        reload_keeping(ctx, r.name, how)


def run_changes(ctx, how):
    check_log_level(ctx, how)
    check_cover(ctx, how)
    check_socks(ctx, how)
    check_policy(ctx, how)


def test_changes_by_hup(ctx):
    run_changes(ctx, "hup")


def test_changes_by_ovlctl(ctx):
    run_changes(ctx, "ctl")


def test_nothing_changed(ctx):
    for how in ("hup", "ctl"):
        before = snapshot(ctx)
        rep = TRIGGERS[how](ctx.tn, "clientA")
        if rep is not None:
            assert rep["changed"] == [] and rep["restart"] == [] and rep["failed"] == [], rep
        assert snapshot(ctx)["chainsA"] == before["chainsA"]
    log = open(ctx.a.log, encoding="utf-8", errors="replace").read()
    assert "nothing changed" in log


def test_restart_key(ctx):
    """data_dir takes a restart: reported, kept, the rest applied."""
    tn = ctx.tn
    tn.configure("clientA", "node", "data_dir", ctx.a.data_dir + "-new")
    tn.configure("clientA", "client", "retransmit", "1500")
    rep = reload_keeping(ctx, "clientA", "ctl")
    assert rep["restart"] == ["node.data_dir"] and rep["changed"] == ["client.retransmit"], rep
    rep = ctl_reload(tn, "clientA")  # still differs from what runs: said again
    assert rep["restart"] == ["node.data_dir"] and rep["changed"] == [], rep
    tn.configure("clientA", "node", "data_dir", ctx.a.data_dir)
    assert ctl_reload(tn, "clientA")["restart"] == []


def test_failed_step(ctx):
    """A new SOCKS address another process holds: the client step fails
    and changes nothing (its keys keep their running values), the log
    step still applies, and ovlctl reload exits 1."""
    tn, a = ctx.tn, ctx.a
    st0 = a.status()
    level = "debug" if st0["log_level"] != "debug" else "info"
    tn.configure("clientA", "socks", "listen", [a.socks, "127.0.0.1:%d" % ctx.web])
    tn.configure("clientA", "client", "retransmit", "1700")
    tn.configure("clientA", "log", "level", level)
    r = tn.ctl_run("clientA", "--json", "reload")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    rep = json.loads(r.stdout)
    assert rep["changed"] == ["log.level"], rep
    assert sorted(rep["failed"]) == ["client.retransmit", "socks.listen"], rep
    assert len(rep["failure"]) == 1 and rep["failure"][0].startswith("client: "), rep
    st = a.status()
    assert st["log_level"] == level and st["socks"] == st0["socks"], st
    assert st["reload_failures"] == st0["reload_failures"] + 1, st
    tn.configure("clientA", "socks", "listen", a.socks)
    rep = ctl_reload(tn, "clientA")  # what failed is applied once it can be
    assert "client.retransmit" in rep["changed"] and rep["failed"] == [], rep
    assert a.status()["socks"] == st0["socks"]


def test_rates(ctx):
    """[relay] rate on a relay of the chain and [node] rate on clientA,
    set and lifted by reloads: in force at once (status), chains and
    links kept, messages across each reload arriving once."""
    tn = ctx.tn
    hop = [r for r in tn.relays() if tn.ctl(r.name, "relay-chains")][0]
    for how, rate, want in (("hup", "1 MB", 1000000), ("ctl", None, 0)):
        tn.configure(hop.name, "relay", "rate", rate)
        rep = reload_keeping(ctx, hop.name, how)
        assert rep is None or rep["changed"] == ["relay.rate"], rep
        assert hop.status()["bw_relay_rate"] == want, hop.status()
        tn.configure("clientA", "node", "rate", rate)
        rep = reload_keeping(ctx, "clientA", how)
        assert rep is None or rep["changed"] == ["node.rate"], rep
        assert ctx.a.status()["bw_node_rate"] == want


def metrics_addr(ctx):
    uri = ctx.a.status().get("metrics_listen", "")
    return uri[len("tcp://"):] if uri.startswith("tcp://") else uri


def scrape(addr):
    host, port = addr.rsplit(":", 1)
    with urllib.request.urlopen("http://%s:%s/metrics" % (host, port), timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def test_metrics_listen(ctx):
    """[metrics] listen set, moved, refused (the old listener opens again)
    and removed by reloads."""
    tn = ctx.tn
    tn.configure("clientA", "metrics", "listen", "127.0.0.1:0")
    assert ctl_reload(tn, "clientA")["changed"] == ["metrics.listen"]
    first = metrics_addr(ctx)
    assert first and "ovl_config_reloads_total{" in scrape(first), first
    port = sockstest.closed_port()
    tn.configure("clientA", "metrics", "listen", "127.0.0.1:%d" % port)
    assert ctl_reload(tn, "clientA")["changed"] == ["metrics.listen"]
    assert metrics_addr(ctx) == "127.0.0.1:%d" % port
    scrape(metrics_addr(ctx))
    tn.configure("clientA", "metrics", "listen", "127.0.0.1:%d" % ctx.web)  # taken
    r = tn.ctl_run("clientA", "--json", "reload")
    assert r.returncode == 1 and json.loads(r.stdout)["failed"] == ["metrics.listen"], r.stdout
    assert metrics_addr(ctx) == "127.0.0.1:%d" % port  # the old one again
    scrape(metrics_addr(ctx))
    tn.configure("clientA", "metrics", "listen", None)
    assert ctl_reload(tn, "clientA")["changed"] == ["metrics.listen"]
    assert metrics_addr(ctx) == ""


def direct_endpoints(ctx, boot):
    """The endpoints registered with boot itself (not replicated)."""
    st = ctx.tn[boot].status()
    return st["dir_endpoints"] - st["dir_endpoints_replicated"]


def test_bootstrap(ctx):
    """boot2 removed from clientA's config: no longer a configured peer, its
    link stays, and boot2 holds clientA only as replicated once its direct
    registration lapsed (no more heartbeats); added again: configured, and
    clientA registers with it at once over the link still open."""
    tn, b2 = ctx.tn, ctx.tn["boot2"]
    conf = open(ctx.a.config, encoding="utf-8").read()
    st0 = ctx.a.status()
    n0 = st0["peers_configured"]
    wait_for(lambda: direct_endpoints(ctx, "boot2") == 2, 10.0, "both clients at boot2")
    tn.configure("clientA", "bootstrap.boot2", "address", None)
    tn.configure("clientA", "bootstrap.boot2", "id", None)
    rep = reload_keeping(ctx, "clientA", "ctl")
    assert rep["changed"] == ["bootstrap.boot2 (removed)"], rep
    assert ctx.a.status()["peers_configured"] == n0 - 1
    assert any(p["peer"] == b2.id and p.get("state") == "open" for p in tn.ctl("clientA", "peers"))
    wait_for(lambda: direct_endpoints(ctx, "boot2") == 1, 20.0, "boot2 to let clientA lapse")
    reg0 = ctx.a.status()["dir_registrations_ok"]
    with open(ctx.a.config, "w", encoding="utf-8") as f:
        f.write(conf)
    tn.extra = [e for e in tn.extra if e[1] != "bootstrap.boot2"]
    reload_keeping(ctx, "clientA", "hup")
    st = ctx.a.status()
    assert st["peers_configured"] == n0, st
    assert st["reload_failures"] == st0["reload_failures"], st
    wait_for(lambda: direct_endpoints(ctx, "boot2") == 2, 10.0, "clientA registered with boot2")
    assert ctx.a.status()["dir_registrations_ok"] > reg0
    assert ctl_reload(tn, "clientA")["changed"] == []


def break_config(ctx, text):
    """Append text to clientA's config; return the line where it starts."""
    with open(ctx.a.config, encoding="utf-8") as f:
        lines = f.read().count("\n")
    with open(ctx.a.config, "a", encoding="utf-8") as f:
        f.write(text)
    return lines + 1


def test_broken_config(ctx):
    tn, a = ctx.tn, ctx.a
    for text, at, why in (("[log]\nthis is not a key\n", 1, "syntax error"),
                          ("[client]\ncover_interval = fast\n", 1, "bad number")):
        st0 = a.status()
        line = break_config(ctx, text) + at
        r = tn.ctl_run("clientA", "reload")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        m = re.search(re.escape(a.config) + r":(\d+): (.*)", r.stderr)
        assert m and int(m.group(1)) == line and why in m.group(2), (line, r.stderr)
        hup(tn, "clientA")
        st = a.status()
        assert st["reloads_refused"] == st0["reloads_refused"] + 2, st
        assert st["reloads"] == st0["reloads"]
        assert st["log_level"] == st0["log_level"] and st["socks"] == st0["socks"]
        tn.configure("clientA", "log", "level", st0["log_level"])  # the file is whole again
        log = open(a.log, encoding="utf-8", errors="replace").read()
        assert "reload refused, the running settings are kept: %s:%d:" % (a.config, line) in log
    rep = reload_keeping(ctx, "clientA", "ctl")
    assert rep["changed"] == [] and rep["restart"] == [], rep


if __name__ == "__main__":
    sockstest.main("test_reload", [test_nothing_changed, test_changes_by_hup,
                                   test_changes_by_ovlctl, test_restart_key,
                                   test_failed_step, test_log_level_override, test_rates,
                                   test_metrics_listen, test_bootstrap, test_broken_config], Ctx)
