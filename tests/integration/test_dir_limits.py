"""What one peer may cost a bootstrap, and what a descriptor may name.

test_flood_leaves_others_served: clientA's link floods the bootstrap with
chain requests ([dir] request_rate / request_burst on the bootstrap); past
its burst it is answered BUSY (dir_requests_limited), while clientB, asking
on its own link at the same time, is served.

test_block_flood_limited: ovl-probe dir-flood speaks from other address
blocks (127.0.7.1, 127.0.8.1: loopback too, but other /24s than the
testnet's 127.0.0.1). From one, ten fresh identities register (past [dir]
max_nodes_per_block: refused full, dir_registrations_full_block) and ask
for fresh sets of chains (past block_chain_burst: busy, counted
dir_chains_limited_block; minting identities bought no more draws); from
the other, two links flood lookups within their own link buckets but past
the block's (busy, dir_requests_limited_block, dir_requests_limited
unmoved). clientB, in the testnet's block, is served meanwhile.

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


BLOCK_NODES, CHAIN_BURST, REQ_BURST = 6, 4, 40


def flood(boot, bind, *args):
    """Run ovl-probe dir-flood at the bootstrap from source address bind;
    return {(op, status): count}."""
    host, port = boot.listen.split("://")[-1].rsplit(":", 1)
    r = ovltest.run([ovltest.OVL_PROBE, "dir-flood", host, port, boot.id, "--bind", bind,
                     "--timeout-ms", "60000"] + list(args), timeout=90)
    print("  ovl-probe dir-flood %s: exit %d:\n%s%s" % (" ".join(args), r.returncode,
                                                       r.stdout, r.stderr))
    assert r.returncode == 0, "ovl-probe dir-flood did not get every reply"
    seen = {}
    for line in r.stdout.splitlines():
        op, status, count = line.split()
        seen[(op, int(status))] = int(count)
    return seen


def test_block_flood_limited(net):
    extra = [("bootstrap", "dir", "max_nodes_per_block", str(BLOCK_NODES)),
             ("bootstrap", "dir", "block_chain_rate", "1"),
             ("bootstrap", "dir", "block_chain_burst", str(CHAIN_BURST)),
             ("bootstrap", "dir", "block_request_rate", "1"),
             ("bootstrap", "dir", "block_request_burst", str(REQ_BURST))]
    tn = ovltest.testnet(net, relays=3, clients=2, chain_length=2, extra=extra)
    boot, b = tn["boot"], tn["clientB"]
    st0 = boot.status()
    # the testnet's own block (3 relays, 2 clients) is under every cap
    assert st0["dir_registrations_full_block"] == 0, st0
    t0 = time.monotonic()
    seen = flood(boot, "127.0.7.1", "--links", "10", "--register", "--chains", "2")
    refill = int(time.monotonic() - t0) + 1
    st = boot.status()
    assert seen.get(("register", 0), 0) == BLOCK_NODES, seen
    assert seen.get(("register", 3), 0) == 10 - BLOCK_NODES, seen  # full
    assert st["dir_registrations_full_block"] - st0["dir_registrations_full_block"] == \
        10 - BLOCK_NODES, st
    # ten requesters, one per identity, each needing a draw: the block's
    # burst (and its refill) drew sets; the rest were busy, none held
    # (a requester's second FRESH within chain_refresh is its cached set)
    ok, busy = seen.get(("chain", 0), 0), seen.get(("chain", 6), 0)
    assert ok <= 2 * (CHAIN_BURST + refill), seen
    assert busy >= 2 * (10 - CHAIN_BURST - refill), seen
    assert ok + busy == 20, seen
    assert st["dir_chains_limited_block"] - st0["dir_chains_limited_block"] >= busy, st
    # another block: lookups past the block's bucket, within each link's
    st1, t1 = boot.status(), time.monotonic()
    seen = flood(boot, "127.0.8.1", "--links", "2", "--lookups", "30")
    refill = int(time.monotonic() - t1) + 1
    st = boot.status()
    limited = st["dir_requests_limited_block"] - st1["dir_requests_limited_block"]
    assert seen.get(("lookup", 6), 0) == limited, (seen, st)
    assert limited >= 60 - REQ_BURST - refill, (limited, st)
    assert st["dir_requests_limited"] == st1["dir_requests_limited"], st
    # clientB, in the testnet's block, is served a fresh chain
    ch = tn.ctl(b.name, "dir-chain", "--length", "1")
    assert ch["length"] == 1, ch
    assert b.status()["dir_registered"] == 1


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
        test_block_flood_limited,
        test_private_addresses_refused,
    ])
