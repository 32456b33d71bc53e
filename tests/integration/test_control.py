"""The control socket and ovlctl: replies to malformed requests, the JSON
output, log-level changes, the client cap and the socket's permissions."""

import os
import select
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import NODE_ID_RE, wait_for  # noqa: E402

EPROTO, EOPNOTSUPP, EINVAL, E2BIG, EBUSY = 71, 95, 22, 7, 16
CONTROL_MAX_CLIENTS = 16  # src/control/control.h
HDR = "ovl-control=1\n"


def reply_errno(pairs):
    vals = [v for k, v in pairs if k == "errno"]
    assert len(vals) == 1, "reply without exactly one errno line: %r" % pairs
    return int(vals[0])


def check_error(node, request, want):
    _, pairs = node.raw(request)
    assert pairs and pairs[0] == ("ovl-control", "1"), "reply must start with the version: %r" % pairs
    got = reply_errno(pairs)
    assert got == want, "request %r: errno %d, want %d (%r)" % (request[:60], got, want, pairs)
    assert any(k == "error" and v for k, v in pairs), "error reply without error text: %r" % pairs
    assert pairs[-1][0] == "errno", "errno must be the last line: %r" % pairs
    assert node.alive(), "the daemon died after %r" % request[:60]


def test_missing_version(net):
    n = net.node("n").start()
    check_error(n, "command=status\n\n", EPROTO)
    check_error(n, "ovl-control=2\ncommand=status\n\n", EPROTO)


def test_unknown_command(net):
    n = net.node("n").start()
    check_error(n, HDR + "command=frobnicate\n\n", EOPNOTSUPP)


def test_line_without_equals(net):
    n = net.node("n").start()
    check_error(n, HDR + "command=status\njunk\n\n", EINVAL)


def test_oversized_request(net):
    n = net.node("n").start()
    head = HDR + "command=status\npad="
    req = head + "x" * (5000 - len(head) - 2) + "\n\n"
    assert len(req) == 5000
    check_error(n, req, E2BIG)
    st = n.status()  # the server survived and still answers
    assert st["control_errors"] >= 1, st


def test_raw_status_ok(net):
    n = net.node("n").start()
    rc, pairs = n.raw(HDR + "command=status\n\n")
    assert rc == 0 and reply_errno(pairs) == 0, pairs
    d = dict(pairs)
    assert d["node_id"] == n.id and int(d["pid"]) == n.proc.pid, d


def test_several_requests_one_connection(net):
    n = net.node("n").start()
    s = n.connect()
    s.sendall((HDR + "command=version\n\n" + HDR + "command=log-level\n\n").encode())
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"errno=0\n\n") < 2 and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    text = data.decode()
    assert text.count("errno=0\n\n") == 2, "want two replies on one connection: %r" % text
    assert "protocol=1" in text and "log_level=info" in text, text


def test_log_level(net):
    n = net.node("n").start()
    assert n.status()["log_level"] == "info"
    r = n.ctl_run("log-level", "debug")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "debug", r.stdout
    assert n.status()["log_level"] == "debug"
    assert n.ctl("log-level") == {"log_level": "debug"}
    r = n.ctl_run("log-level", "bogus")
    assert r.returncode == 1, "log-level bogus: exit %d, want 1" % r.returncode
    assert "ovlctl" in r.stderr and "errno 22" in r.stderr, r.stderr
    assert n.status()["log_level"] == "debug", "a rejected level changed the level"


def test_json_output(net):
    m = net.node("m").start()
    n = net.node("n", peers=[m]).start()
    wait_for(lambda: m.id in n.open_peers(), 15.0, "n's link to m")
    st = n.status()
    assert isinstance(st, dict)
    assert st["node_id"] == n.id and NODE_ID_RE.match(st["node_id"])
    assert st["pid"] == n.proc.pid, st
    assert st["version"] == "0.1.0", st
    assert isinstance(st["listen"], list) and st["listen"] == [n.addr], st
    assert "tcp" in st["transports"].split(","), st
    for k in ("uptime_ms", "links", "links_open", "handshakes_ok", "cells_in", "cells_out",
              "bytes_in", "bytes_out", "closed_hs_auth", "closed_tampered", "control_requests",
              "control_clients_refused"):
        assert isinstance(st[k], int) and st[k] >= 0, "%s: %r" % (k, st.get(k))
    peers = n.peers()
    assert isinstance(peers, list) and len(peers) == 1, peers
    assert peers[0]["peer"] == m.id and peers[0]["name"] == "m", peers
    assert isinstance(peers[0]["cells_in"], int), peers
    v = n.ctl("version")
    assert v["version"] == "0.1.0" and v["protocol"] == 1 and v["control"] == 1, v
    assert "tcp" in v["transports"].split(","), v
    # a node that listens nowhere still reports listen as an array
    q = net.node("q", listen=None).start()
    assert q.status()["listen"] == [], q.status()


def test_human_output(net):
    n = net.node("n").start()
    r = n.ctl_run("status")
    assert r.returncode == 0 and n.id in r.stdout and "listen" in r.stdout, r.stdout
    r = n.ctl_run("peers")
    assert r.returncode == 0 and "PEER" in r.stdout, r.stdout
    r = n.ctl_run("version")
    assert r.returncode == 0 and "0.1.0" in r.stdout, r.stdout


def test_client_cap(net):
    n = net.node("n").start()
    base = n.status()["control_clients_refused"]
    socks = [n.connect() for _ in range(CONTROL_MAX_CLIENTS + 4)]
    replies = {s: b"" for s in socks}
    closed = set()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and len(closed) < len(socks):
        ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.1)
        for s in ready:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                replies[s] += chunk
            else:
                closed.add(s)
    refused = [s for s in socks if b"errno=%d\n" % EBUSY in replies[s]]
    for s in socks:
        s.close()
    assert len(refused) >= 4, "%d of %d clients refused, want at least 4: %r" % (
        len(refused), len(socks), [replies[s] for s in socks])
    assert all(b"error=" in replies[s] for s in refused), "EBUSY reply without error text"
    assert all(s in closed for s in refused), "a refused client was not disconnected"
    assert n.alive()
    st = wait_for(n.status, 10.0, "ovlctl to work again after the clients closed")
    assert st["control_clients_refused"] >= base + len(refused), st


def test_socket_mode(net):
    n = net.node("n").start()
    mode = os.stat(n.sock).st_mode
    assert stat.S_ISSOCK(mode), "%s is not a socket" % n.sock
    assert stat.S_IMODE(mode) == 0o600, "socket mode %o, want 600" % stat.S_IMODE(mode)


def test_no_daemon(net):
    n = net.node("n")  # not started
    r = n.ctl_run("status")
    assert r.returncode == 3, "ovlctl without a daemon: exit %d, want 3" % r.returncode
    assert n.sock in r.stderr, "the error should name the socket: %r" % r.stderr


def test_usage_error(net):
    n = net.node("n").start()
    r = n.ctl_run("no-such-command")
    assert r.returncode == 2, "unknown subcommand: exit %d, want 2" % r.returncode


if __name__ == "__main__":
    ovltest.run_tests("test_control", [
        test_missing_version,
        test_unknown_command,
        test_line_without_equals,
        test_oversized_request,
        test_raw_status_ok,
        test_several_requests_one_connection,
        test_log_level,
        test_json_output,
        test_human_output,
        test_client_cap,
        test_socket_mode,
        test_no_daemon,
        test_usage_error,
    ])
