"""A testnet whose nodes each run in a network namespace of their own, with
a one-way delay on every link (tools/ovl-testnet --netns --delay; suite
"integration").

Over TCP, then over QUIC (when ovld has it): a bootstrap, 3 relays that are
exits to the host, 2 clients with SOCKS5 ports, each node on its own
address 10.S.0.N, and DELAY_MS on each packet from node to node (held by
ovl-shaper in the receiver's namespace). Checked by events, with lower
bounds only (a busy machine makes everything slower, never faster):

- every node listens on its namespace's address, and the bootstrap lists
  the relays at their own addresses;
- a round trip between two node namespaces (ping -U) takes at least
  2 x DELAY_MS;
- messages from clientA to clientB are acknowledged and arrive once; the
  client's round trip p50 is at least 2 x 3 x DELAY_MS (a chain of 3
  relays: three links each way at least);
- a SOCKS5 stream from the host through clientA's port and an exit to an
  echo server on the host carries 512-byte records back intact, each
  echo taking at least 2 x 3 x DELAY_MS;
- stopping the testnet removes every namespace, the host's veth and the
  shaper, and stopping it again is harmless.

Skipped (exit 77) when not root, without iptables' NFQUEUE target, or
without ovl-shaper (libnetfilter-queue-dev, tools/deps).
"""

import atexit
import os
import socket
import subprocess
import sys
import threading
import time

import ovltest
import sockstest
from ovltest import wait_for

DELAY_MS = 5.0
HOPS = 3
N_MSG = 5
N_ECHO = 5


def skip_reason():
    mod = ovltest.load_testnet()
    netns = mod.ovl_netns
    why = netns.why_unavailable()
    if why:
        return why
    missing = netns.nfqueue_missing()
    if missing:
        return "iptables' NFQUEUE target unavailable: %s" % missing
    try:
        netns.find_shaper()
    except netns.NetnsError as e:
        return str(e)
    return None


def echo_server(host):
    """An echo server on host (a free port) in a thread: its socket."""
    lis = socket.socket()
    lis.bind((host, 0))
    lis.listen(16)

    def serve(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    def loop():
        while True:
            try:
                c, _ = lis.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return lis


def check_addresses(tn):
    net = tn.net
    for n in tn.nodes:
        st = n.status()
        addr = net.addr_of(n.name)
        assert st["listen"] and all(("//%s:" % addr) in x for x in st["listen"]), \
            "%s listens on %r, not on %s" % (n.name, st["listen"], addr)
    relays = tn.ctl("boot", "relays")
    want = {net.addr_of(r.name) for r in tn.relays()}
    seen = {u.split("//")[-1].rsplit(":", 1)[0] for r in relays for u in r["uris"]}
    assert want <= seen, "the bootstrap lists %r, not the relays' %r" % (seen, want)


def check_ping(tn):
    net = tn.net
    r = subprocess.run(["ip", "netns", "exec", net.ns_of("clientA"), "ping", "-U", "-n", "-c",
                        "3", "-i", "0.2", "-W", "10", net.addr_of("relay1")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    times = [float(x.split("time=")[1].split()[0]) for x in r.stdout.splitlines()
             if "time=" in x]
    assert times and min(times) >= 2 * DELAY_MS, \
        "ping between namespaces %r ms, under 2 x %g ms" % (times, DELAY_MS)


def check_messages(tn):
    a, b = tn["clientA"], tn["clientB"]
    wait_for(lambda: any(c["state"] == "ready" for c in tn.ctl("clientA", "chains")),
             20.0, "clientA's chain")
    sent = [tn.ctl("clientA", "send", "--wait", "--to", b.id, "netns %d" % i)["id"]
            for i in range(N_MSG)]
    got = {}

    def arrived():
        for m in tn.ctl("clientB", "recv", "--max", "100"):
            assert m["id"] not in got, "message %s delivered twice" % m["id"]
            got[m["id"]] = m
        return set(sent) <= set(got)

    wait_for(arrived, 30.0, "the messages at clientB")
    st = a.status()
    assert st["client_rtt_samples"] >= N_MSG, st
    low = 2 * HOPS * DELAY_MS * 1000
    assert st["client_rtt_us_p50"] >= low, \
        "round trip p50 %d us, under %d us (%d hops of %g ms each way)" % (
            st["client_rtt_us_p50"], low, HOPS, DELAY_MS)


def check_socks(tn):
    lis = echo_server(tn.host_addr())
    try:
        port = lis.getsockname()[1]
        rep, s = sockstest.socks_open(tn["clientA"].socks, tn.host_addr(), port)
        assert rep == 0, "SOCKS reply %d" % rep
        with s:
            s.settimeout(60 * ovltest.SLACK)
            for i in range(N_ECHO):
                msg = os.urandom(512)
                t0 = time.monotonic()
                s.sendall(msg)
                back = b""
                while len(back) < len(msg):
                    d = s.recv(len(msg) - len(back))
                    assert d, "the stream closed after %d bytes" % len(back)
                    back += d
                took = (time.monotonic() - t0) * 1000
                assert back == msg, "echo %d differs" % i
                assert took >= 2 * HOPS * DELAY_MS, \
                    "echo %d took %.1f ms, under %g" % (i, took, 2 * HOPS * DELAY_MS)
    finally:
        lis.close()


def check_teardown(tn):
    net = tn.net
    names = net.namespaces()
    shaper = net.shaper_pid
    tn.stop()
    tn.stop()  # idempotent
    left = [ns for ns in names if os.path.exists(os.path.join("/run/netns", ns))]
    assert not left, "namespaces left: %s" % left
    r = subprocess.run(["ip", "link", "show", net.host_if()], capture_output=True)
    assert r.returncode != 0, "the host's veth %s is left" % net.host_if()
    assert shaper and not os.path.exists("/proc/%d/cmdline" % shaper) or \
        b"ovl-shaper" not in open("/proc/%d/cmdline" % shaper, "rb").read(), "shaper still runs"


def run_on(net, transport):
    tn = ovltest.testnet(net, relays=HOPS, clients=2, socks=True, transport=transport,
                         chain_length=HOPS, exit_policy="accept 10.0.0.0/8:*, reject *:*",
                         netns={"delay_ms": DELAY_MS, "loss_pct": 0, "rate_mbit": 0,
                                "seed": 1})
    atexit.register(tn.stop)  # a killed test leaves no namespace behind
    check_addresses(tn)
    check_ping(tn)
    check_messages(tn)
    check_socks(tn)
    check_teardown(tn)


def test_tcp(net):
    run_on(net, "tcp")


def test_quic(net):
    r = ovltest.run([ovltest.OVLD, "--version"])
    if "quic" not in r.stdout:
        raise ovltest.Skip("%s was built without QUIC" % ovltest.OVLD)
    run_on(net, "quic")


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("test_netns: SKIP (%s)" % why)
        sys.exit(77)
    ovltest.run_tests("test_netns", [test_tcp, test_quic])
