"""Streams to services by node ID, <id>.ovl:PORT (suite "integration").

A testnet of 1 bootstrap, 3 relays, 2 clients (no exit anywhere); every
client has a SOCKS5 listener and offers one service, port 8080 of its .ovl
name, which is Python's http.server in a thread serving random files
(ovl-testnet --service 8080=127.0.0.1:PORT).

- curl (Debian's) fetches a small file and a 6 MB one from the service
  behind clientB through clientA's SOCKS port, with --socks5-hostname: the
  bodies are identical (sha256), and neither end counted a bad record;
  with SOCKS credentials too (a line of chains of their own);
- SOCKS replies: an unknown node ID and a malformed .ovl name get 0x04
  without any stream, a port with no service 0x05 (refused by clientB);
  the first bytes of a request ride with the open;
- a long download keeps going while short streams to the same service
  open and end beside it, some through clientB to clientA's service.
"""

import base64
import hashlib
import os
import shutil
import subprocess

import ovltest
import sockstest
from ovltest import wait_for

BIG = 6 * 1024 * 1024
PORT = 8080


class Ctx:
    def __init__(self, net):
        self.root, self.files, self.httpd = sockstest.serve_files(dict((("big", BIG), ("small", 5000))), "ovl-svc-")
        service = "%d=127.0.0.1:%d" % (PORT, self.httpd.server_address[1])
        self.tn = ovltest.testnet(net, relays=3, clients=2, socks=True, services=[service])
        self.a, self.b = self.tn["clientA"], self.tn["clientB"]
        for name in ("clientA", "clientB"):
            wait_for(lambda: any(c["state"] == "ready" for c in self.tn.ctl(name, "chains")),
                     10.0, name + "'s chain")

    def url(self, node, path):
        return "http://%s.ovl:%d/%s" % (node.id, PORT, path)

    def close(self):
        self.httpd.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def test_fetch(ctx):
    for name, extra in (("small", ()), ("big", ()), ("small", ("--proxy-user", "u:p"))):
        r = sockstest.curl(ctx.a.socks, ctx.url(ctx.b, name), *extra, max_time=120)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == ctx.files[name], \
            "the body of %s differs" % name
    sb, sa = ctx.b.status(), ctx.a.status()
    assert sb["client_service_streams_opened"] >= 3, sb
    assert sa["client_streams_opened"] >= 3, sa
    assert sa["client_stream_cells_in"] >= BIG // 818, sa
    assert sa["client_service_records_bad"] == 0 and sb["client_service_records_bad"] == 0
    # Nothing went to an exit: there is none, and none was needed.
    for r in ctx.tn.relays():
        assert ctx.tn[r.name].status()["relay_streams_opened"] == 0


def test_replies(ctx):
    before = ctx.a.status()["client_streams_active"]
    unknown = base64.b32encode(os.urandom(32)).decode().rstrip("=").lower()
    for host in (unknown + ".ovl", "abc.ovl", "x." + ctx.b.id + ".ovl"):
        code, s = sockstest.socks_open(ctx.a.socks, host, PORT)
        s.close()
        assert code == 0x04, "%s: reply %#x" % (host, code)
    assert ctx.a.status()["client_streams_active"] == before
    refused = ctx.b.status()["client_service_streams_refused"]
    code, s = sockstest.socks_open(ctx.a.socks, ctx.b.id + ".ovl", PORT + 1)
    s.close()
    assert code == 0x05, "a port with no service: reply %#x" % code
    assert ctx.b.status()["client_service_streams_refused"] == refused + 1
    # The first bytes ride with the open: a request sent before the reply.
    code, s = sockstest.socks_open(ctx.a.socks, ctx.b.id.upper() + ".OVL", PORT,
                            first=b"GET /small HTTP/1.0\r\n\r\n")
    assert code == 0x00, code
    body = sockstest.read_all(s)
    s.close()
    assert hashlib.sha256(body.split(b"\r\n\r\n", 1)[1]).hexdigest() == ctx.files["small"]


def test_parallel(ctx):
    """A long download lives on while short streams open and end beside
    it, to the same service and to the other client's: it is held open
    by reading only its first megabyte until they are done."""
    code, s = sockstest.socks_open(ctx.a.socks, ctx.b.id + ".ovl", PORT,
                            first=b"GET /big HTTP/1.0\r\n\r\n")
    assert code == 0x00, code
    head = b""
    while len(head) < 1 << 20:
        chunk = s.recv(65536)
        assert chunk, "the long download ended early"
        head += chunk
    for _ in range(3):
        short = [subprocess.Popen(sockstest.curl_cmd(via.socks, ctx.url(to, "small"), max_time=120),
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
                 for via, to in ((ctx.a, ctx.b), (ctx.a, ctx.b), (ctx.b, ctx.a))]
        for p in short:
            out, err = p.communicate(timeout=150)
            assert p.returncode == 0, err
            assert hashlib.sha256(out).hexdigest() == ctx.files["small"]
        assert ctx.b.status()["client_service_streams_active"] >= 1
    body = head + sockstest.read_all(s)
    s.close()
    assert hashlib.sha256(body.split(b"\r\n\r\n", 1)[1]).hexdigest() == ctx.files["big"]
    wait_for(lambda: ctx.b.status()["client_service_streams_active"] == 0, 30.0,
             "clientB's service streams to end")
    for n in (ctx.a, ctx.b):
        st = n.status()
        assert st["client_service_records_bad"] == 0 and st["client_service_replays"] == 0, st


TESTS = [test_fetch, test_replies, test_parallel]

if __name__ == "__main__":
    sockstest.main("test_service", TESTS, Ctx)
