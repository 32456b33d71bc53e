"""The metrics of real nodes on a testnet of 1 bootstrap, 3 relays and 2
clients, every node with `[metrics] listen = 127.0.0.1:0`
(docs/CONTROL.md "metrics" and "Metrics over HTTP"). Chains are 3 long,
so every chain runs through every relay: the relays the tests name carry
the clients' messages whatever chains were drawn.

One network is shared by the tests, in order:

test_scrape_parses: `curl` of every node's /metrics parses with
prometheus_client's text parser (python3-prometheus-client), with the
Content-Type of the format 0.0.4, the families of the node's roles, and
the same families as `ovlctl metrics` gives over the control socket.

test_counters_move: clientA sends clientB messages: its cells and bytes
by transport grow, so do the relays' peeled cells and clientB's
received messages, and the round trip histogram's _count grows by the
messages sent (chain setup's with a new chain); the buckets stay
cumulative.

test_http_refusals: a path other than /metrics is answered 404, another
method 405, a head over 8 KiB 431, a malformed one 400, and each is
counted by its status.

test_bad_burst: relay1's listener takes a burst of bad connections (some
hold, past the caps; some send garbage, half a head, nothing, or reset
at once, 200 in all): the caps and timeouts count them, the relay keeps
carrying clientA's messages meanwhile (its peeled cells grow by them),
and afterwards it answers a scrape as before.

test_dashboard_names: every series the example dashboard
(docs/grafana-ovl.json) draws is in the nodes' expositions.
"""

import json
import os
import random
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's package, under a Python of another prefix (pyenv)
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

MAX_PER_ADDR, MAX_CONNS, TIMEOUT_S = 4, 16, 5  # src/control/mhttp.h


class Ctx:
    def __init__(self, net, tn):
        self.net, self.tn = net, tn
        self.a, self.b = tn["clientA"], tn["clientB"]


def fixture(net):
    tn = ovltest.testnet(net, relays=3, clients=2, chain_length=3,
                         extra=[("all", "metrics", "listen", "127.0.0.1:0")])
    return Ctx(net, tn)


def addr_of(ctx, node):
    """host:port of node's metrics listener, from its status."""
    uri = ctx.tn.ctl(node.name, "status")["metrics_listen"]
    assert uri.startswith("tcp://127.0.0.1:"), uri
    return uri[len("tcp://"):]


def curl(ctx, node, path="/metrics", *args):
    """(status, headers, body) of curl's request to node's listener."""
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", *args,
                        "http://%s%s" % (addr_of(ctx, node), path)],
                       capture_output=True, timeout=30)  # bytes: keep the CRLFs
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, body


def families(text):
    """{family name: Metric} of an exposition, parsed by prometheus_client."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def scrape(ctx, node):
    status, headers, body = curl(ctx, node)
    assert status == 200, (status, body[:200])
    return families(body)


def value(fams, family, sample=None, **labels):
    """The value of family's sample (its own name, or sample's) with labels."""
    f = fams[family]
    want = sample or (f.name + "_total" if f.type == "counter" else f.name)
    for s in f.samples:
        if s.name == want and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError("%s%r" % (want, labels))


def total(fams, family, **labels):
    """The sum of family's samples whose labels include labels."""
    f = fams[family]
    return sum(s.value for s in f.samples if all(s.labels.get(k) == v for k, v in labels.items()))


def check_buckets(fams, family):
    f = fams[family]
    assert f.type == "histogram", f.type
    buckets = [s for s in f.samples if s.name == family + "_bucket"]
    les = [float(s.labels["le"]) for s in buckets]
    counts = [s.value for s in buckets]
    assert les == sorted(les) and les[-1] == float("inf"), les
    assert counts == sorted(counts), counts
    assert counts[-1] == value(fams, family, family + "_count")


def send_messages(ctx, n):
    for i in range(n):
        out = ctx.tn.ctl(ctx.a.name, "send", "--wait", "--to", ctx.b.id, "message %d" % i)
        assert out.get("result") == "delivered", out


def ready_chain(ctx, node):
    """Wait until client node holds a ready chain: a testnet is ready once
    its nodes registered, and a client's first chain may still be set up."""
    wait_for(lambda: any(c["state"] == "ready" for c in ctx.tn.ctl(node.name, "chains")),
             30.0, "a ready chain on %s" % node.name)


def test_scrape_parses(ctx):
    tn = ctx.tn
    for node in tn.nodes:
        if node.role == "client":
            ready_chain(ctx, node)  # its setup is counted once it is ready
        status, headers, body = curl(ctx, node)
        assert status == 200, (node.name, status)
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
        assert headers["connection"] == "close", headers
        assert int(headers["content-length"]) == len(body.encode()), headers
        fams = families(body)
        roles = {r: value(fams, "ovl_role", role=r) for r in ("bootstrap", "relay", "client")}
        assert roles == {"bootstrap": node.role == "bootstrap", "relay": node.role == "relay",
                         "client": node.role == "client"}, (node.name, roles)
        for name in ("ovl_info", "ovl_links", "ovl_link_cells", "ovl_link_bytes",
                     "ovl_link_closes", "ovl_control_requests", "ovl_metrics_http_answers",
                     "ovl_resident_memory_bytes", "ovl_dir_registered"):
            assert name in fams, (node.name, name)
        assert value(fams, "ovl_dir_registered") == 1 or node.role == "bootstrap"
        assert value(fams, "ovl_links", state="open") >= 1, node.name
        if node.role == "relay":
            assert "ovl_relay_chains" in fams and "ovl_relay_cells_dropped" in fams
            assert "ovl_client_chains" not in fams
        if node.role == "client":
            assert value(fams, "ovl_client_chains") >= 1
            check_buckets(fams, "ovl_chain_setup_seconds")
            check_buckets(fams, "ovl_message_round_trip_seconds")
            assert value(fams, "ovl_chain_setup_seconds", "ovl_chain_setup_seconds_count") >= 1
        if node.role == "bootstrap":
            assert value(fams, "ovl_dir_relays") == 3, node.name
        # The control command gives the same families (values move meanwhile).
        r = tn.ctl_run(node.name, "metrics")
        assert r.returncode == 0, r.stderr
        assert set(families(r.stdout)) == set(fams), node.name
        js = tn.ctl(node.name, "metrics")
        assert js['ovl_role{role="%s"}' % node.role] == 1, node.name


def test_counters_move(ctx):
    tn, a, b = ctx.tn, ctx.a, ctx.b
    n = 20
    before_a, before_b = scrape(ctx, a), scrape(ctx, b)
    before_r = {r.name: scrape(ctx, r) for r in tn.relays()}
    send_messages(ctx, n)
    after_a, after_b = scrape(ctx, a), scrape(ctx, b)
    after_r = {r.name: scrape(ctx, r) for r in tn.relays()}

    def grew(before, after, family, by=1, **labels):
        d = total(after, family, **labels) - total(before, family, **labels)
        assert d >= by, "%s%r grew by %s, want at least %s" % (family, labels, d, by)
        return d

    grew(before_a, after_a, "ovl_link_cells", n, direction="out")
    grew(before_a, after_a, "ovl_link_bytes", n * 512, direction="out", transport="tcp")
    grew(before_a, after_a, "ovl_client_messages_sent", n)
    grew(before_a, after_a, "ovl_client_acks", n, direction="in")
    grew(before_b, after_b, "ovl_client_messages_received", n)
    grew(before_b, after_b, "ovl_link_bytes", n * 512, direction="in")
    peeled = sum(total(after_r[r], "ovl_relay_forward_cells_peeled")
                 - total(before_r[r], "ovl_relay_forward_cells_peeled") for r in after_r)
    assert peeled >= 3 * n, peeled  # chains of 3: each message crosses the three relays
    rtt = "ovl_message_round_trip_seconds"
    d = value(after_a, rtt, rtt + "_count") - value(before_a, rtt, rtt + "_count")
    resent = total(after_a, "ovl_client_retransmits") - total(before_a, "ovl_client_retransmits")
    assert n - resent <= d <= n, (d, resent)  # messages sent once: a resent one is left out
    assert value(after_a, rtt, rtt + "_sum") > value(before_a, rtt, rtt + "_sum")
    check_buckets(after_a, rtt)
    setup = "ovl_chain_setup_seconds"
    c0 = value(after_a, setup, setup + "_count")
    tn.ctl_run(a.name, "new-chain")
    wait_for(lambda: value(scrape(ctx, a), setup, setup + "_count") > c0, 15.0,
             "a new chain's setup counted")


def raw(ctx, node, data, shut=True):
    """Send data on a new connection to node's listener; return all it answers."""
    host, port = addr_of(ctx, node).split(":")
    s = socket.create_connection((host, int(port)), timeout=20)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_http_refusals(ctx):
    r1 = ctx.tn["relay1"]
    before = scrape(ctx, r1)
    assert curl(ctx, r1, "/")[0] == 404
    assert curl(ctx, r1, "/metrics/x")[0] == 404
    status, headers, _ = curl(ctx, r1, "/metrics", "-X", "POST", "-d", "x=1")
    assert status == 405 and headers["allow"] == "GET", headers
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    ans = raw(ctx, r1, big)
    assert ans.startswith(b"HTTP/1.1 431 "), ans[:80]
    ans = raw(ctx, r1, b"GET /metrics HTTP/1.1\r\n\r\n")  # no Host
    assert ans.startswith(b"HTTP/1.1 400 "), ans[:80]
    ans = raw(ctx, r1, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert ans.startswith(b"HTTP/1.1 200 OK\r\n") and b"\novl_relay_chains " in ans, ans[:80]
    after = scrape(ctx, r1)
    fam = "ovl_metrics_http_answers"
    for code, n in (("404", 2), ("405", 1), ("431", 1), ("400", 1), ("200", 2)):
        d = value(after, fam, code=code) - value(before, fam, code=code)
        assert d == n, (code, d)


def ctl_metrics(ctx, node):
    """The node's exposition over the control socket, parsed."""
    r = ctx.tn.ctl_run(node.name, "metrics")
    assert r.returncode == 0, r.stderr
    return families(r.stdout)


def bad_connection(addr, src, kind, rng):
    """One connection of the burst from src; return its socket if it holds."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(addr)
    if kind == "hold":
        s.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished: the timeout ends it
        return s
    if kind == "garbage":
        s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4096))) + b"\n\n")
    elif kind == "half":
        s.sendall(b"GET /metr")
    elif kind == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    s.close()
    return None


def test_bad_burst(ctx):
    """Holds from the testnet's own block (127.0.0.1: its cap of 4 is
    reached, the rest refused), then 192 bad connections from 48 other
    blocks (127.0.X.1), as fast as they go: the global cap of 16 refuses
    some. The counters are read over the control socket meanwhile, since
    the holds take every place of 127.0.0.1 until they time out."""
    tn, r1 = ctx.tn, ctx.tn["relay1"]
    host, port = addr_of(ctx, r1).split(":")
    addr = (host, int(port))
    before = ctl_metrics(ctx, r1)
    rng = random.Random(21)
    kinds = ["garbage", "half", "empty", "reset"]
    held, made = [], 0
    try:
        for _ in range(2 * MAX_PER_ADDR):
            held.append(bad_connection(addr, "127.0.0.1", "hold", rng))
            made += 1
        for i in range(192):
            bad_connection(addr, "127.0.%d.1" % (10 + i % 48), kinds[i % 4], rng)
            made += 1
        # The relay carries traffic while the held connections wait.
        peeled0 = tn.ctl(r1.name, "status")["relay_cells_peeled"]
        send_messages(ctx, 5)
        assert r1.alive()
        peeled = tn.ctl(r1.name, "status")["relay_cells_peeled"] - peeled0
        assert peeled >= 5, "relay1 peeled %d cells of 5 messages" % peeled

        def delta(f, family, **labels):
            return value(f, family, **labels) - value(before, family, **labels)

        def settled():
            f = ctl_metrics(ctx, r1)
            seen = delta(f, "ovl_metrics_http_connections") + delta(f, "ovl_metrics_http_refused")
            return (value(f, "ovl_metrics_http_connections_open") == 0
                    and seen >= made - 48 and f)  # a reset one may never be accepted

        after = wait_for(settled, 4 * TIMEOUT_S, "every connection of the burst handled")
    finally:
        for s in held:
            s.close()
    taken = delta(after, "ovl_metrics_http_connections")
    refused = delta(after, "ovl_metrics_http_refused")
    print("burst of %d: %d taken, %d refused, %d timed out, %d answered 400" % (
        made, taken, refused, delta(after, "ovl_metrics_http_timeouts"),
        delta(after, "ovl_metrics_http_answers", code="400")))
    assert taken + refused <= made, (taken, refused)
    assert refused >= MAX_PER_ADDR, refused  # the held ones past the block's cap at least
    assert delta(after, "ovl_metrics_http_timeouts") >= MAX_PER_ADDR  # the held ones taken
    assert delta(after, "ovl_metrics_http_answers", code="400") >= 1  # garbage with an end
    assert delta(after, "ovl_metrics_http_answers", code="200") == 0
    st = tn.ctl(r1.name, "status")
    assert st["links_open"] >= 2, st
    send_messages(ctx, 3)
    fams = scrape(ctx, r1)  # over HTTP again, as before the burst
    assert value(fams, "ovl_role", role="relay") == 1


def test_dashboard_names(ctx):
    """Every series docs/grafana-ovl.json asks for is in the exposition of
    some node of the testnet, with the labels its expression groups by."""
    labels = {}
    for node in ctx.tn.nodes:
        for f in scrape(ctx, node).values():
            for s in f.samples:
                labels.setdefault(s.name, set()).update(s.labels)
    with open(os.path.join(ovltest.REPO, "docs", "grafana-ovl.json"), encoding="utf-8") as fp:
        dash = json.load(fp)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", ())]
    exprs.append(dash["templating"]["list"][0]["definition"])
    assert len(exprs) > 20, exprs
    for e in exprs:
        names = re.findall(r"\b(ovl_[a-z0-9_]+)", e)
        assert names, e
        for name in names:
            assert name in labels, "%s: no sample %s in any node's exposition" % (e, name)
        for group in re.findall(r"by \(([^)]*)\)", e):
            for lab in (x.strip() for x in group.split(",")):
                assert lab == "instance" or any(lab in labels[n] for n in names), (e, lab)


TESTS = [test_scrape_parses, test_counters_move, test_http_refusals, test_bad_burst,
         test_dashboard_names]

if __name__ == "__main__":
    ovltest.run_tests("test_metrics", TESTS, fixture=fixture)
