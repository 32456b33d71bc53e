"""What the stream tests share (test_socks, test_service, test_isolation,
test_hidden, test_reload, test_bandwidth): a quiet web server in a thread,
a TCP server with a handler per connection, random files for it to
serve, a free port nobody listens on, SOCKS5 CONNECT by hand, curl through
a SOCKS port, and the main of a test module whose tests share one
testnet."""

import hashlib
import http.server
import os
import random
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading

import ovltest


class Quiet(http.server.SimpleHTTPRequestHandler):
    """http.server serving files, without a log line per request."""

    def log_message(self, *args):
        pass


def web_server(root, cls=Quiet):
    """An HTTP server on 127.0.0.1 (a free port) serving root, in a thread."""
    handler = lambda *a, **k: cls(*a, directory=root, **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class TcpServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 (a free port, .port) that calls handle(sock)
    for each connection in a thread of its own, then closes it; close()
    stops it."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, handle):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                handle(self.request)

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.shutdown()
        self.server_close()


def serve_files(sizes, prefix):
    """Write random files (name -> size; OVL_TEST_SEED repeats them) into a
    new temporary directory and serve it: (root, {name: sha256}, httpd).
    The caller shuts httpd down and removes root."""
    root = tempfile.mkdtemp(prefix=prefix)
    rng = random.Random(int(os.environ.get("OVL_TEST_SEED") or 1))
    digests = {}
    for name, size in sizes.items():
        data = rng.randbytes(size)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return root, digests, web_server(root)


def closed_port():
    """A port on 127.0.0.1 that nobody listens on (it was free a moment ago)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def socks_open(addr, host, port, cred=None, first=b""):
    """A SOCKS5 CONNECT by hand to host (an IPv4 address, else a name), with
    user and password when cred is given and first sent right behind the
    request: (reply code, socket)."""
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)), timeout=60)
    if cred:
        s.sendall(b"\x05\x01\x02")
        assert s.recv(2) == b"\x05\x02"
        u, pw = (x.encode() for x in cred)
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(pw)]) + pw)
        assert s.recv(2) == b"\x01\x00"
    else:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
    try:
        dst = b"\x01" + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        dst = b"\x03" + bytes([len(host)]) + host.encode()
    s.sendall(b"\x05\x01\x00" + dst + struct.pack(">H", port) + first)
    rep = b""
    while len(rep) < 10:
        chunk = s.recv(10 - len(rep))
        if not chunk:
            break
        rep += chunk
    assert len(rep) == 10 and rep[0] == 5, rep
    return rep[1], s


def read_all(s):
    """Everything s sends until it closes."""
    body = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return body
        body += chunk


def curl_cmd(via, url, *extra, max_time=60):
    """curl fetching url through SOCKS address via, names resolved at the far
    end (--socks5-hostname); OVL_TEST_SLACK stretches max_time as it does
    every wait."""
    max_time *= ovltest.SLACK / 4
    return ["curl", "-sS", "--max-time", "%d" % max_time, "--socks5-hostname", via, "-o", "-",
            url] + list(extra)


def curl(via, url, *extra, max_time=60):
    """Run curl_cmd: the CompletedProcess, output captured."""
    cmd = curl_cmd(via, url, *extra, max_time=max_time)
    return subprocess.run(cmd, capture_output=True, timeout=max_time * ovltest.SLACK / 4 + 30)


def main(module, tests, ctx_cls, need_curl=True):
    """Run tests on one shared testnet made by ctx_cls(net), then close it
    (ctx.close(), then its testnet); exit 77 (skipped) without curl."""
    if need_curl and not shutil.which("curl"):
        print("%s: SKIP (no curl; tools/deps installs it)" % module)
        sys.exit(77)
    box = []

    def fixture(net):
        box.append(ctx_cls(net))
        return box[0]

    try:
        ovltest.run_tests(module, tests, fixture=fixture)
    finally:
        for c in box:
            c.close()
            c.tn.stop()
