"""Pushed delivery and anonymous replies on a testnet of 1 bootstrap, 4
relays and 3 clients (docs/CONTROL.md "subscribe" and "reply",
docs/PROTOCOL.md 19.12).

One network is shared by the tests, in order: `ovlctl recv --follow`
prints a message the moment it arrives, with no polling (the daemon
counts its requests); a subscriber that does not read holds at most
about 1 MiB of events, the rest waits in the inbox and follows once it
reads; clientA sends clientB a message without revealing itself, clientB
answers it with `ovlctl reply`, and only clientA gets the answer, marked
as the reply to its message, while clientC can neither answer that
message nor read anything; a reply cannot be answered; once clientA's
chain is gone the reply fails and says why.
"""

import json
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

ENOENT, EPERM, ECONNRESET = 2, 1, 104
HDR = "ovl-control=1\n"


class Ctx:
    def __init__(self, net, tn):
        self.net, self.tn = net, tn
        self.a, self.b, self.c = tn["clientA"], tn["clientB"], tn["clientC"]


def fixture(net):
    tn = ovltest.testnet(net, relays=4, clients=3, chain_length=2)
    return Ctx(net, tn)


def send_wait(ctx, src, dst, text):
    out = ctx.tn.ctl(src.name, "send", "--wait", "--to", dst.id, text)
    assert out.get("result") == "delivered", out
    return out["id"]


def recv_all(ctx, node):
    return ctx.tn.ctl(node.name, "recv")


class Lines:
    """The lines a child process prints, read without blocking."""

    def __init__(self, proc):
        self.proc, self.buf = proc, b""
        os.set_blocking(proc.stdout.fileno(), False)

    def next(self):
        """The next complete line, or None for now."""
        try:
            chunk = self.proc.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            self.buf += chunk
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def read_events(s, buf, n):
    """Read n pushed envelopes (each ends at a blank line) from socket s."""
    out = []
    while len(out) < n:
        while b"\n\n" in buf and len(out) < n:
            rep, buf = buf.split(b"\n\n", 1)
            out.append(ovltest.parse_kv(rep.decode()))
        if len(out) < n:
            chunk = s.recv(1 << 20)
            assert chunk, "the daemon closed after %d of %d events" % (len(out), n)
            buf += chunk
    return out, buf


# ---- tests -----------------------------------------------------------------


def test_follow_pushes(ctx):
    """recv --follow prints each message as it enters the inbox: after its
    subscribe the daemon answers it no request at all, so two messages
    sent one after the other (the second only once the first was printed)
    came without polling. They are taken from the inbox, as recv takes
    them; SIGTERM ends it with status 0."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    before = b.status()["control_requests"]
    proc = subprocess.Popen([tn.ovlctl, "-s", b.control_socket, "--json", "recv", "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    ovltest._procs.append(proc)  # killed at exit whatever happens
    lines = Lines(proc)
    try:
        got = []
        for text in ("pushed one", "pushed two"):
            mid = send_wait(ctx, a, b, text)
            line = wait_for(lines.next, 10.0, "recv --follow to print %r" % text)
            m = json.loads(line)
            assert m["id"] == mid and m["text"] == text and m["from"] is None, m
            assert m["reply_to"] is None, m
            got.append(mid)
        # the follower's one request (subscribe), and this status
        assert b.status()["control_requests"] == before + 2, "recv --follow polled"
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = wait_for(lambda: proc.poll() is not None, 10.0, "recv --follow to exit")
    assert proc.returncode == 0, (rc, proc.stderr.read())
    assert recv_all(ctx, b) == [], "pushed messages were left in the inbox"


def test_subscriber_bounded(ctx):
    """A subscriber that does not read is pushed messages while less than
    1 MiB of its events is unwritten; what follows stays in the inbox
    (bounded as ever) and is pushed once it reads."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    path = os.path.join(ctx.net.dir, "big")
    size = 600 * 1024  # 800 KiB of base64: two of them are over 1 MiB
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30.0)
    s.connect(b.control_socket)
    try:
        s.sendall((HDR + "command=subscribe\nevents=messages\n\n").encode())
        (sub,), buf = read_events(s, b"", 1)
        assert sub == [("ovl-control", "1"), ("errno", "0")], sub
        received = b.status()["client_messages_received"]
        for _ in range(3):
            out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "--file", path)
            assert out.get("result") == "delivered", out
        st = wait_for(lambda: (lambda st: st if st["client_messages_received"] >= received + 3
                               else None)(b.status()), 30.0, "the three messages at clientB")
        assert st["client_inbox_messages"] == 1, "the subscriber was given %d of 3" % (
            3 - st["client_inbox_messages"])
        events, buf = read_events(s, buf, 3)
        for ev in events:
            d = dict(ev)
            assert d["event"] == "message" and d["errno"] == "0" and int(d["len"]) == size, d
        wait_for(lambda: b.status()["client_inbox_messages"] == 0, 10.0, "the inbox to drain")
    finally:
        s.close()


def test_anonymous_reply(ctx):
    """clientA sends without --reply; clientB answers on the way back; only
    clientA reads it, as the reply to its message; clientC cannot answer
    that message for clientB, and a reply cannot be answered."""
    tn, a, b, c = ctx.tn, ctx.a, ctx.b, ctx.c
    sa, sc = a.status(), c.status()
    mid = send_wait(ctx, a, b, "who am I?")
    got = wait_for(lambda: recv_all(ctx, b) or None, 10.0, "the message at clientB")
    assert [m["id"] for m in got] == [mid] and got[0]["from"] is None, got
    out = tn.ctl(b.name, "reply", mid, "nobody knows")
    rid = out["id"]
    assert len(rid) == 32 and rid != mid, out
    answer = wait_for(lambda: recv_all(ctx, a) or None, 10.0, "the reply at clientA")
    assert len(answer) == 1, answer
    r = answer[0]
    assert r["id"] == rid and r["reply_to"] == mid and r["text"] == "nobody knows", r
    assert r["from"] is None, r
    st = a.status()
    assert st["client_replies_in"] == sa["client_replies_in"] + 1, st
    assert st["client_dropped_auth"] == sa["client_dropped_auth"], st
    assert b.status()["client_replies_sent"] >= 1
    # clientC never received mid: it has no key and no way back for it.
    r = tn.ctl_run(c.name, "reply", mid, "forged")
    assert r.returncode == 1 and "errno %d" % ENOENT in r.stderr, r.stderr
    assert recv_all(ctx, c) == []
    stc = c.status()
    assert stc["client_messages_received"] == sc["client_messages_received"], stc
    # A reply has no way back of its own.
    r = tn.ctl_run(a.name, "reply", rid, "and you?")
    assert r.returncode == 1 and "errno %d" % EPERM in r.stderr, r.stderr
    # Human output names what it answers.
    tn.ctl(b.name, "reply", mid, "second answer")
    text = wait_for(lambda: tn.ctl_run(a.name, "recv").stdout or None, 10.0, "the second reply")
    assert "re:   %s" % mid in text and "second answer" in text, text
    ctx.mid = mid


def test_reply_after_chain_gone(ctx):
    """Once clientA's chain is replaced and torn down, its exit ends the
    delivery ID and clientB's reply fails, saying why."""
    tn, a, b = ctx.tn, ctx.a, ctx.b
    old = {ch["chain"] for ch in tn.ctl(a.name, "chains")}
    tn.ctl_run(a.name, "new-chain")
    wait_for(lambda: not old & {ch["chain"] for ch in tn.ctl(a.name, "chains")}, 15.0,
             "clientA's old chains to be torn down")

    def refused():
        r = tn.ctl_run(b.name, "reply", ctx.mid, "too late")
        return r.returncode == 1 and "errno %d" % ECONNRESET in r.stderr and r.stderr

    why = wait_for(refused, 10.0, "clientB's reply to fail once the chain is gone")
    assert "chain is gone" in why, why
    recv_all(ctx, a)  # replies that made it before the exit let go


TESTS = [test_follow_pushes, test_subscriber_bounded, test_anonymous_reply,
         test_reply_after_chain_gone]

if __name__ == "__main__":
    ovltest.run_tests("test_reply", TESTS, fixture=fixture)
