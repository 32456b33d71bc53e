"""The control socket and ovlctl: replies to malformed requests, the JSON
output, log-level changes, the client cap and the socket's permissions, and
the role commands (send, recv, reply, subscribe, chains, relays, dir-chain)
given bad input or asked of a node without the role."""

import base64
import os
import select
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import NODE_ID_RE, wait_for  # noqa: E402

EPROTO, EOPNOTSUPP, EINVAL, E2BIG, EBUSY = 71, 95, 22, 7, 16
EMSGSIZE, ENOENT = 90, 2
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


# A client whose only bootstrap never answers: it accepts messages (they
# queue) and its directory requests fail after request_timeout.
FAKE_ID = base64.b32encode(bytes(range(32))).decode().lower().rstrip("=")
MAX_MESSAGE = 3000
CLIENT_EXTRA = """
[bootstrap.nowhere]
address = tcp://127.0.0.1:9
id = %s

[dir]
request_timeout = 300

[client]
max_message = %d
""" % (FAKE_ID, MAX_MESSAGE)


def client_node(net, name="c"):
    return net.node(name, roles="client", extra=CLIENT_EXTRA).start()


def send_req(*lines):
    return HDR + "command=send\n" + "".join(l + "\n" for l in lines) + "\n"


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


def test_send_malformed(net):
    c = client_node(net)
    to = "to=" + FAKE_ID  # not ourselves: a client refuses that
    good = base64.b64encode(b"hello world").decode()
    for lines, want in [
        ((to, "data=aGVsbG8"), EINVAL),                      # missing padding
        ((to, "data=aGVs!G8="), EINVAL),                     # outside the alphabet
        ((to, "data=aGVsbG8=", "data=aGVs"), EINVAL),        # padding in the middle
        ((to, "data=aGVs bG8="), EINVAL),                    # blank inside
        ((to, "data=" + "QUJD" * 251), EINVAL),              # a line over 1000 characters
        (("to=" + c.id[:-1], "text=x"), EINVAL),             # 51 characters
        (("to=" + c.id.upper() + "!", "text=x"), EINVAL),
        (("to=" + "1" * 52, "text=x"), EINVAL),              # 1 is not base32
        (("text=x",), EINVAL),                               # no destination
        ((to,), EINVAL),                                     # no message
        ((to, "text=x", "data=" + good), EINVAL),            # both
        ((to, "reply=yes", "text=x"), EINVAL),
        ((to, "text=x", "text=y"), EINVAL),                  # only data repeats
        ((to, "colour=blue", "text=x"), EINVAL),
        ((to, "text="), EINVAL),                             # empty message
    ]:
        check_error(c, send_req(*lines), want)
    # one byte over [client] max_message
    big = base64.b64encode(os.urandom(MAX_MESSAGE + 1)).decode()
    chunks = ["data=" + big[i:i + 1000] for i in range(0, len(big), 1000)]
    check_error(c, send_req(to, *chunks), EMSGSIZE)
    # far over the request cap of a send (max_message*4/3 + 64 KiB)
    huge = send_req(to, *(["data=" + "QUJD" * 250] * 80))
    assert len(huge) > MAX_MESSAGE * 4 // 3 + 65536
    check_error(c, huge, E2BIG)
    # other commands keep the 4 KiB cap even on a client
    check_error(c, HDR + "command=status\n" + "pad=%s\n" % ("x" * 1000) * 5 + "\n", E2BIG)
    # and still serves: a good send in chunks, then text
    ok = base64.b64encode(os.urandom(MAX_MESSAGE)).decode()
    rc, pairs = c.raw(send_req(to, "reply=1", *["data=" + ok[i:i + 1000]
                                                for i in range(0, len(ok), 1000)]))
    assert rc == 0 and reply_errno(pairs) == 0, pairs
    mid = dict(pairs)["id"]
    assert len(mid) == 32 and int(mid, 16) >= 0, mid
    rc, pairs = c.raw(send_req(to, "text=hello, world"))
    assert rc == 0 and dict(pairs)["id"] != mid, pairs
    st = c.status()
    assert st["control_errors"] >= 18, st


def read_replies(s, n):
    """Read n replies (each ends at a blank line) from socket s."""
    buf, out = b"", []
    while len(out) < n:
        chunk = s.recv(65536)
        assert chunk, "the daemon closed after %d of %d replies" % (len(out), n)
        buf += chunk
        while b"\n\n" in buf and len(out) < n:
            rep, buf = buf.split(b"\n\n", 1)
            out.append(ovltest.parse_kv(rep.decode()))
    return out


def messages_taken(c):
    """Messages the client has taken so far: queued, sent or given up."""
    st = c.status()
    return (st["client_send_queued"] + st["client_messages_sent"] +
            st["client_messages_failed"])


def test_send_raw_length(net):
    """send length=N: the N bytes after the blank line are the message,
    taken as they are (a blank line inside them ends nothing), and the next
    request starts right after them."""
    c = client_node(net)
    to = "to=" + FAKE_ID
    body = b"a\n\nb=c\n" + os.urandom(MAX_MESSAGE - 7)
    # A message taken is queued until it is sent or given up (to a node that
    # does not exist it fails once the lookup does, whenever that is): count
    # it wherever it is, so the verdict does not depend on timing.
    base = messages_taken(c)
    s = c.connect()
    try:
        s.sendall(send_req(to, "length=%d" % len(body)).encode() + body +
                  (HDR + "command=version\n\n").encode())
        sent, version = read_replies(s, 2)
    finally:
        s.close()
    assert reply_errno(sent) == 0 and len(dict(sent)["id"]) == 32, sent
    assert reply_errno(version) == 0 and "version" in dict(version), version
    assert messages_taken(c) == base + 1
    for lines, tail, want in [
        ((to, "length=abc"), "", EINVAL),
        ((to, "length=0"), "", EINVAL),
        ((to, "length=-3"), "", EINVAL),
        ((to, "length=3", "text=x"), "abc", EINVAL),          # two message forms
        ((to, "length=3", "length=3"), "abc", EINVAL),        # repeated
        ((to, "length=%d" % (MAX_MESSAGE + 1)), "x" * (MAX_MESSAGE + 1), EMSGSIZE),
        ((to, "length=%d" % 10**9), "", E2BIG),               # over the cap: refused at once
        ((to, "length=%d" % 10**40), "", E2BIG),
    ]:
        check_error(c, send_req(*lines) + tail, want)
    assert messages_taken(c) == base + 1  # no refused request took one


def test_recv_malformed(net):
    c = client_node(net)
    for v in ("0", "1001", "-1", "ten", "", " 5", "1e3"):
        check_error(c, HDR + "command=recv\nmax=%s\n\n" % v, EINVAL)
    check_error(c, HDR + "command=recv\nmax=1\nmax=2\n\n", EINVAL)
    check_error(c, HDR + "command=recv\nfrom=x\n\n", EINVAL)
    rc, pairs = c.raw(HDR + "command=recv\nmax=1000\n\n")
    assert rc == 0 and dict(pairs)["count"] == "0", pairs
    assert c.ctl("recv") == []
    r = c.ctl_run("recv", "--max", "0")
    assert r.returncode == 2, "recv --max 0: exit %d, want 2" % r.returncode


def test_reply_subscribe_malformed(net):
    """reply and subscribe given bad input; a reply may carry a big body
    (like send) and is refused for what it answers, not for its size."""
    c = client_node(net)
    rid = "id=" + "ab" * 16

    def reply_req(*lines):
        return HDR + "command=reply\n" + "".join(l + "\n" for l in lines) + "\n"

    for lines in [("text=x",), ("id=zz", "text=x"), ("id=" + "ab" * 15, "text=x"), (rid,),
                  (rid, "text=x", "to=" + FAKE_ID), (rid, rid, "text=x"), (rid, "data=!!!!")]:
        check_error(c, reply_req(*lines), EINVAL)
    check_error(c, reply_req(rid, "text=x", "length=1") + "y", EINVAL)  # two message forms
    check_error(c, reply_req(rid, "text=never received"), ENOENT)
    big = base64.b64encode(os.urandom(2500)).decode()  # over 4096 bytes of request
    chunks = ["data=" + big[i:i + 1000] for i in range(0, len(big), 1000)]
    check_error(c, reply_req(rid, *chunks), ENOENT)
    check_error(c, reply_req(rid, "length=%d" % (MAX_MESSAGE + 1)) + "x" * (MAX_MESSAGE + 1),
                EMSGSIZE)
    for args in ("", "events=all\n", "events=messages\nevents=messages\n", "max=1\n"):
        check_error(c, HDR + "command=subscribe\n%s\n" % args, EINVAL)
    # A subscriber that shuts down its writing side gets its reply (and what
    # the inbox held: nothing here), then the connection closes.
    rc, pairs = c.raw(HDR + "command=subscribe\nevents=messages\n\n")
    assert rc == 0 and pairs == [("ovl-control", "1"), ("errno", "0")], pairs
    # After subscribe a connection's requests are read and ignored (not
    # even counted): only subscribe and the two status requests count.
    before = c.status()["control_requests"]
    s = c.connect()
    try:
        s.sendall((HDR + "command=subscribe\nevents=messages\n\n" + HDR +
                   "command=version\n\n").encode())
        sub, = read_replies(s, 1)
        assert reply_errno(sub) == 0, sub
        assert c.status()["control_requests"] == before + 2
        s.setblocking(False)
        try:
            extra = s.recv(65536)
        except BlockingIOError:
            extra = b""
        assert extra == b"", "a subscriber's request was answered: %r" % extra
    finally:
        s.close()
    for args in [("reply",), ("reply", "--file"), ("reply", "ab" * 16),
                 ("reply", "--to", FAKE_ID, "ab" * 16, "x"), ("reply", "--wait", "ab" * 16, "x")]:
        r = c.ctl_run(*args)
        assert r.returncode == 2, "%r: exit %d, want 2 (%s)" % (args, r.returncode, r.stderr)
    r = c.ctl_run("reply", "ab" * 16, "hello")
    assert r.returncode == 1 and "errno %d" % ENOENT in r.stderr, r.stderr


def test_dir_chain_errors(net):
    c = client_node(net)
    for args in ("length=0", "length=9", "backups=5", "length=x", "length=3\nlength=3", "hops=3"):
        check_error(c, HDR + "command=dir-chain\n%s\n\n" % args, EINVAL)
    # the bootstrap never answers: a deferred error, in order with what follows
    s = c.connect()
    s.sendall((HDR + "command=dir-chain\nlength=2\n\n" + HDR + "command=version\n\n").encode())
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"\n\n") < 2 and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    replies = data.decode().split("\n\n")
    assert len(replies) >= 2, data
    assert "errno=0" not in replies[0] and "error=" in replies[0], replies
    assert "protocol=1" in replies[1] and replies[1].endswith("errno=0"), replies
    # a client that leaves while its dir-chain is pending
    for _ in range(5):
        s = c.connect()
        s.sendall((HDR + "command=dir-chain\n\n").encode())
        s.close()
    time.sleep(0.5)  # past request_timeout: the cancelled callbacks would have run
    assert c.alive()
    st = c.status()
    assert st["dir_requests_out"] >= 1 or st["dir_request_timeouts"] >= 0, st
    r = c.ctl_run("dir-chain", "--length", "9")
    assert r.returncode == 2, r.stderr
    r = c.ctl_run("dir-chain")
    assert r.returncode == 1 and "errno" in r.stderr, (r.returncode, r.stderr)


def test_roles_off(net):
    n = net.node("n").start()  # a relay without a bootstrap: no client, no bootstrap role
    check_error(n, send_req("to=" + n.id, "text=hi"), EOPNOTSUPP)
    check_error(n, HDR + "command=recv\n\n", EOPNOTSUPP)
    check_error(n, HDR + "command=chains\n\n", EOPNOTSUPP)
    check_error(n, HDR + "command=new-chain\n\n", EOPNOTSUPP)
    check_error(n, HDR + "command=relays\n\n", EOPNOTSUPP)
    check_error(n, HDR + "command=recv\nmax=0\n\n", EOPNOTSUPP)  # the role comes first
    check_error(n, HDR + "command=reply\nid=%s\ntext=x\n\n" % ("00" * 16), EOPNOTSUPP)
    check_error(n, HDR + "command=subscribe\nevents=messages\n\n", EOPNOTSUPP)
    assert n.ctl("relay-chains") == []  # a relay with no chain through it
    check_error(n, HDR + "command=relay-chains\nx=1\n\n", EINVAL)
    check_error(n, HDR + "command=recv\nbogus=0\n\n", EINVAL)  # unknown keys before that
    r = n.ctl_run("send", "--to", n.id, "hi")
    assert r.returncode == 1 and "errno %d" % EOPNOTSUPP in r.stderr, r.stderr
    st = n.status()
    assert "relay_cells_peeled" in st and "dir_registered" in st, st
    assert not any(k.startswith("client_") for k in st), st
    assert "dir_relays" not in st, st
    for k in ("chanmap", "chain_unknown", "relay_dropped_auth", "dir_requests_out"):
        assert isinstance(st[k], int), (k, st.get(k))


def test_client_status_and_chains(net):
    c = client_node(net)
    st = c.status()
    for k in ("client_messages_sent", "client_inbox_bytes", "client_send_queued", "dir_registered"):
        assert isinstance(st[k], int), (k, st.get(k))
    assert not any(k.startswith("relay_") for k in st), st
    assert isinstance(c.ctl("chains"), list)
    r = c.ctl_run("send", "--reply", "hi")  # no --to
    assert r.returncode == 2, r.returncode
    r = c.ctl_run("send", "--to", c.id)  # no message
    assert r.returncode == 2, r.returncode
    r = c.ctl_run("send", "--to", "nonsense", "hi")
    assert r.returncode == 1 and "errno %d" % EINVAL in r.stderr, r.stderr
    r = c.ctl_run("send", "--to", c.id, "to myself")
    assert r.returncode == 1 and "errno %d" % EINVAL in r.stderr, r.stderr
    out = c.ctl("send", "--to", FAKE_ID, "two words")
    assert isinstance(out, dict) and len(out["id"]) == 32, out


def test_bootstrap_relays(net):
    b = net.node("b", roles="bootstrap").start()
    assert b.ctl("relays") == []
    check_error(b, HDR + "command=relay-chains\n\n", EOPNOTSUPP)
    st = b.status()
    assert isinstance(st["dir_relays"], int) and isinstance(st["dir_chains_cached"], int), st
    check_error(b, HDR + "command=relays\nx=1\n\n", EINVAL)


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
        test_send_malformed,
        test_send_raw_length,
        test_recv_malformed,
        test_reply_subscribe_malformed,
        test_dir_chain_errors,
        test_roles_off,
        test_client_status_and_chains,
        test_bootstrap_relays,
    ])
