"""What one peer may cost a bootstrap, and what a descriptor may name.

test_flood_leaves_others_served: clientA's link floods the bootstrap with
chain requests ([dir] request_rate / request_burst on the bootstrap); past
its burst it is answered BUSY (dir_requests_limited), while clientB, asking
on its own link at the same time, is served.

test_private_addresses_refused: a bootstrap without [dir]
allow_private_addresses refuses a relay whose descriptor names 127.0.0.1
(dir_bad_addresses, status ADDRESS in the relay's log), and a relay without
it publishes no such address at all.
"""

import socket
import time

import ovltest
from ovltest import wait_for

HDR = "ovl-control=1\n"
FLOOD = 60
RATE, BURST = 1, 5


def pipelined(sock_path, request, count, timeout=60.0):
    """Send request count times on one control connection; return the replies."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall((HDR + request).encode() * count)
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\n\n") < count and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    replies = [r for r in data.decode().split("\n\n") if r]
    assert len(replies) == count, "want %d replies, got %d: %r" % (count, len(replies), data)
    return replies


def test_flood_leaves_others_served(net):
    extra = [("bootstrap", "dir", "request_rate", str(RATE)),
             ("bootstrap", "dir", "request_burst", str(BURST))]
    tn = ovltest.testnet(net, relays=3, clients=2, chain_length=2, extra=extra)
    a, b = tn["clientA"], tn["clientB"]
    t0 = time.monotonic()
    replies = pipelined(a.control_socket, "command=dir-chain\nlength=1\n\n", FLOOD)
    ok = sum(1 for r in replies if "errno=0\n" in r + "\n")
    # the burst, less what clientA spent before, plus what refilled since
    allowed = BURST + int(time.monotonic() - t0) * RATE + 1
    assert ok <= allowed, "%d of %d chains served, at most %d allowed" % (ok, FLOOD, allowed)
    busy = [r for r in replies if "errno=0\n" not in r + "\n"]
    assert busy and all("no chain from the directory" in r for r in busy), busy
    st = tn["boot"].status()
    assert st["dir_requests_limited"] >= FLOOD - allowed, st
    # clientB's link has its own bucket
    ch = tn.ctl(b.name, "dir-chain", "--length", "1")
    assert ch["length"] == 1, ch
    # and clientA is still registered: heartbeats are never refused
    assert a.status()["dir_registered"] == 1
    assert tn["boot"].status()["dir_endpoints"] == 2


def test_private_addresses_refused(net):
    b = net.node("b", roles="bootstrap").start()
    boot = "[bootstrap.b]\naddress = %s\nid = %s\n" % (b.addr, b.id)
    r = net.node("r", roles="relay",
                 extra=boot + "\n[dir]\nheartbeat = 1000\nallow_private_addresses = true\n")
    r.start()
    wait_for(lambda: b.status()["dir_bad_addresses"] >= 1 and
             r.status()["dir_registrations_failed"] >= 1, 20.0, "the bootstrap to refuse r")
    assert b.status()["dir_relays"] == 0
    assert r.status()["dir_registered"] == 0
    assert "address not public" in r.log(), r.log()
    # without the setting a node publishes no loopback address: nothing to refuse
    s = net.node("s", roles="relay", extra=boot).start()
    wait_for(lambda: "no public listen address" in s.log(), 20.0, "s to say why it is silent")
    st = s.status()
    assert st["dir_registrations_ok"] == 0 and st["dir_registrations_failed"] == 0, st
    assert b.status()["dir_relays"] == 0


if __name__ == "__main__":
    ovltest.run_tests("test_dir_limits", [
        test_flood_leaves_others_served,
        test_private_addresses_refused,
    ])
