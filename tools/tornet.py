"""tools/tornet.py - a private Tor network on loopback, for tools/bench.

    net = TorNet(root, exit_ports=(p1, p2))  # files under root
    net.start(timeout)      # keys, torrc files, every tor; waits for the client
    net.wait_stream(port)   # until a stream through the client reaches port
    ...                     # SOCKS5 on net.socks ("127.0.0.1:PORT")
    net.stop()              # every tor by pid: SIGTERM, then SIGKILL

Directory authorities (also relays, never exits), relays, exits to
127.0.0.1 only, and one client with a SOCKS port on 127.0.0.1; the tors
listen on 127.0.0.2. TestingTorNetwork, a vote every 10 seconds.

A client judges an exit by the summary of its policy in the consensus and
microdescriptors, which lists ports open to every address: "accept
127.0.0.1:*, reject *:*" sums up as "reject 1-65535", no exit at all (the
client then built circuits by the hundred a second to exits it knew were
doomed). So the exits' policy also accepts the given ports on any address,
and OutboundBindAddressExit 127.0.0.1 keeps them on loopback all the same:
the kernel refuses a socket bound to 127.0.0.1 any other destination.

Each tor also exits by itself when this process is gone
(__OwningControllerProcess), so a killed bench leaves nothing running for
long. Only Debian's tor and tor-gencert and the Python standard library
are used.

Run alone (python3 tools/tornet.py DIR PORT...) it starts a network whose
exits open PORT..., prints the SOCKS address and waits for Ctrl-C.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

POLL_S = 0.1
# Every tor listens on 127.0.0.2, the servers tor exits to on 127.0.0.1. A
# client asked for an address some exit itself has, and that exit allows,
# sends the stream there alone ("exit enclave": a fourth hop to that exit),
# which the exit refused here.
RELAY_ADDR = "127.0.0.2"
STOP_TIMEOUT = 10.0  # SIGTERM to exit, then SIGKILL

# A vote every VOTE_S seconds, with the least delays tor accepts in a
# testing network (vote + distribution < half the interval), so the first
# consensus naming every relay comes within a few intervals. Consensuses
# stay valid for several intervals: a late vote on a busy host does not
# leave the client without one.
VOTE_S, VOTE_DELAY_S, DIST_DELAY_S, INTERVALS_VALID = 10, 2, 2, 4


class TorNetError(Exception):
    """What the user must see: no tor, a tor that exited, a deadline."""


def tor_binaries():
    """(tor, tor-gencert) from PATH, or None when either is missing."""
    tor, gencert = shutil.which("tor"), shutil.which("tor-gencert")
    return (tor, gencert) if tor and gencert else None


def tor_version(tor):
    r = subprocess.run([tor, "--version"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    words = r.stdout.split()
    return words[2].rstrip(".") if len(words) > 2 else "unknown"


def _free_port(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _tail(path, lines=12):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log)"


class _Control:
    """The few control port requests the bench makes, on a Unix socket:
    a command and its 250 reply, and asynchronous events."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise TorNetError("tor control socket %s: %s" % (path, e)) from e
        self.buf, self.events = b"", []

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise TorNetError("tor closed its control connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def command(self, text):
        """Send text; return the lines of its 250 reply, the data of a
        "250+" line included (events that come first are queued for
        event()). Any other reply raises TorNetError."""
        self.sock.sendall(text.encode() + b"\r\n")
        lines = []
        while True:
            line = self._line()
            if line.startswith("650"):
                self.events.append(line[4:].split())
            elif line.startswith("250+"):
                lines.append(line[4:])
                data = self._line()
                while data != ".":
                    lines.append(data[1:] if data.startswith("..") else data)
                    data = self._line()
            elif line.startswith(("250-", "250 ")):
                lines.append(line[4:])
                if line[3] == " ":
                    return lines
            else:
                raise TorNetError("tor control: %s: %s" % (text, line))

    def event(self, match):
        """Wait for the first event whose words satisfy match; return its
        third word (the status of a CIRC event)."""
        while True:
            while self.events:
                w = self.events.pop(0)
                if match(w):
                    return w[2]
            line = self._line()
            if line.startswith("650"):
                self.events.append(line[4:].split())


class TorNode:
    """One tor: its directory, ports and process."""

    def __init__(self, root, name, role):
        self.name, self.role = name, role  # role: auth, relay, exit, client
        self.dir = os.path.join(root, name)
        self.torrc = os.path.join(self.dir, "torrc")
        self.log = os.path.join(self.dir, "notice.log")
        self.or_port = _free_port(RELAY_ADDR) if role != "client" else None
        self.dir_port = _free_port(RELAY_ADDR) if role == "auth" else None
        self.socks_port = _free_port("127.0.0.1") if role == "client" else None
        self.fingerprint = self.v3ident = None
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class TorNet:
    """A private Tor network: authorities, relays, exits and one client."""

    def __init__(self, root, exit_ports=(), authorities=3, relays=1, exits=2):
        bins = tor_binaries()
        if bins is None:
            raise TorNetError("no tor or tor-gencert in PATH (apt-get install tor)")
        self.tor, self.gencert = bins
        self.root, self.exit_ports = root, tuple(exit_ports)
        self.nodes = [TorNode(root, "auth%d" % i, "auth") for i in range(1, authorities + 1)]
        self.nodes += [TorNode(root, "relay%d" % i, "relay") for i in range(1, relays + 1)]
        self.nodes += [TorNode(root, "exit%d" % i, "exit") for i in range(1, exits + 1)]
        self.client = TorNode(root, "client", "client")
        self.nodes.append(self.client)
        self.socks = "127.0.0.1:%d" % self.client.socks_port
        self.control = os.path.join(self.client.dir, "control")
        self.started_at = self.bootstrapped_s = None

    def describe(self):
        """'3 authorities, 1 relay, 2 exits': what the network holds."""
        words = (("auth", "authority", "authorities"), ("relay", "relay", "relays"),
                 ("exit", "exit", "exits"))
        out = []
        for role, one, many in words:
            k = sum(n.role == role for n in self.nodes)
            out.append("%d %s" % (k, one if k == 1 else many))
        return ", ".join(out)

    def _run(self, argv, what, stdin=""):
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise TorNetError("%s failed: %s" % (what, (r.stderr or r.stdout).strip()[-800:]))
        return r.stdout

    def _authority_keys(self, n):
        """The authority's v3 keys (tor-gencert) and relay identity (tor
        --list-fingerprint): both go into every tor's DirAuthority line."""
        keys = os.path.join(n.dir, "keys")
        os.makedirs(keys, mode=0o700, exist_ok=True)
        cert = os.path.join(keys, "authority_certificate")
        self._run([self.gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
                   "-a", "%s:%d" % (RELAY_ADDR, n.dir_port),
                   "-i", os.path.join(keys, "authority_identity_key"),
                   "-s", os.path.join(keys, "authority_signing_key"), "-c", cert],
                  "tor-gencert for %s" % n.name, stdin="\n")
        with open(cert, encoding="ascii") as f:
            for line in f:
                if line.startswith("fingerprint "):
                    n.v3ident = line.split()[1]
        out = self._run([self.tor, "--list-fingerprint", "--DataDirectory", n.dir,
                         "--ORPort", "%s:%d" % (RELAY_ADDR, n.or_port), "--Nickname", n.name,
                         "--Log", "err stderr", "--DirAuthority", self._placeholder_auth()],
                        "tor --list-fingerprint for %s" % n.name)
        for line in out.splitlines():
            words = line.split(None, 1)
            if len(words) == 2 and words[0] == n.name:
                n.fingerprint = words[1].replace(" ", "")
        if not n.v3ident or not n.fingerprint:
            raise TorNetError("no fingerprints for %s" % n.name)

    @staticmethod
    def _placeholder_auth():
        # tor --list-fingerprint parses the configuration; a DirAuthority
        # line keeps it from ever thinking of the public authorities.
        return "none orport=1 no-v2 v3ident=%s 127.0.0.1:1 %s" % ("0" * 40, "0" * 40)

    def _common(self, n):
        lines = [
            "TestingTorNetwork 1",
            "DataDirectory %s" % n.dir,
            "RunAsDaemon 0",
            "Nickname %s" % n.name,
            "Log notice file %s" % n.log,
            "SafeLogging 0",
            "ShutdownWaitLength 0",
            "__OwningControllerProcess %d" % os.getpid(),
            "AssumeReachable 1",
            # Guard for every relay and Exit for the exits (which open no
            # port 80 or 443), without hours of uptime or measured
            # bandwidth.
            "TestingDirAuthVoteGuard *",
            "TestingDirAuthVoteExit %s" % ",".join(
                x.name for x in self.nodes if x.role == "exit"),
            "TestingMinExitFlagThreshold 0",
            "TestingMinFastFlagThreshold 0",
            "V3AuthNIntervalsValid %d" % INTERVALS_VALID,
        ]
        for a in self.nodes:
            if a.role == "auth":
                lines.append("DirAuthority %s orport=%d no-v2 v3ident=%s %s:%d %s" % (
                    a.name, a.or_port, a.v3ident, RELAY_ADDR, a.dir_port, a.fingerprint))
        return lines

    def _torrc(self, n):
        lines = self._common(n)
        if n.role != "client":
            lines += ["SocksPort 0", "ORPort %s:%d" % (RELAY_ADDR, n.or_port),
                      "Address %s" % RELAY_ADDR,
                      "ContactInfo ovl-bench@localhost"]
        if n.role == "auth":
            lines += [
                "DirPort %s:%d" % (RELAY_ADDR, n.dir_port),
                "AuthoritativeDirectory 1",
                "V3AuthoritativeDirectory 1",
                "V3AuthVotingInterval %d" % VOTE_S,
                "V3AuthVoteDelay %d" % VOTE_DELAY_S,
                "V3AuthDistDelay %d" % DIST_DELAY_S,
                "TestingV3AuthInitialVotingInterval %d" % VOTE_S,
                "TestingV3AuthInitialVoteDelay %d" % VOTE_DELAY_S,
                "TestingV3AuthInitialDistDelay %d" % DIST_DELAY_S,
            ]
        if n.role in ("auth", "relay"):
            lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
        if n.role == "exit":
            # Loopback and nothing else (see the top of this file); the
            # ports for the policy's summary. TestingTorNetwork already
            # lifts the rule against private addresses; say so anyway.
            lines += ["ExitRelay 1", "ExitPolicyRejectPrivate 0",
                      "ExitPolicyRejectLocalInterfaces 0", "OutboundBindAddressExit 127.0.0.1",
                      "ExitPolicy accept 127.0.0.1:*"]
            lines += ["ExitPolicy accept *:%d" % p for p in self.exit_ports]
            lines += ["ExitPolicy reject *:*"]
        if n.role == "client":
            lines += ["SocksPort 127.0.0.1:%d" % n.socks_port,
                      # No authentication: the socket sits in a 0700 directory.
                      "ControlSocket %s" % self.control]
        return "\n".join(lines) + "\n"

    def create(self):
        """Keys and a torrc for every node."""
        for n in self.nodes:
            os.makedirs(n.dir, mode=0o700, exist_ok=True)
        for n in self.nodes:
            if n.role == "auth":
                self._authority_keys(n)
        for n in self.nodes:
            with open(n.torrc, "w", encoding="ascii") as f:
                f.write(self._torrc(n))

    def start(self, timeout=300):
        """Create the files, start every tor and wait until the client has
        bootstrapped to 100%. Stops what it started when that fails."""
        try:
            self.create()
            self.started_at = time.monotonic()
            for n in self.nodes:
                out = open(os.path.join(n.dir, "stdout.log"), "wb")
                n.proc = subprocess.Popen([self.tor, "-f", n.torrc], stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT)
                out.close()
            deadline = self.started_at + timeout
            self._wait(self._bootstrapped, deadline, "the tor client to bootstrap")
            self.bootstrapped_s = time.monotonic() - self.started_at
        except BaseException:
            self.stop()
            raise

    def _bootstrapped(self):
        try:
            with open(self.client.log, encoding="utf-8", errors="replace") as f:
                return "Bootstrapped 100%" in f.read()
        except OSError:
            return False

    def _wait(self, pred, deadline, what):
        while not pred():
            for n in self.nodes:
                if not n.alive():
                    raise TorNetError("%s exited (%s):\n%s\n%s" % (
                        n.name, n.proc.returncode if n.proc else "not started",
                        _tail(os.path.join(n.dir, "stdout.log")), _tail(n.log)))
            if time.monotonic() > deadline:
                raise TorNetError("timed out waiting for %s; client log:\n%s" % (
                    what, _tail(self.client.log)))
            time.sleep(POLL_S)

    def _stream_works(self, port):
        try:
            with socket.create_connection(("127.0.0.1", self.client.socks_port),
                                          timeout=30) as s:
                s.sendall(b"\x05\x01\x00\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") +
                          struct.pack(">H", port))
                rep = b""
                while len(rep) < 12:
                    d = s.recv(12 - len(rep))
                    if not d:
                        return False
                    rep += d
                return rep[:2] == b"\x05\x00" and rep[3] == 0
        except OSError:
            return False

    def wait_stream(self, port, timeout=120):
        """Wait until a SOCKS5 CONNECT to 127.0.0.1:port succeeds through
        the client (exits named in a fresh consensus, a circuit built)."""
        self._wait(lambda: self._stream_works(port), time.monotonic() + timeout,
                   "a stream through tor to 127.0.0.1:%d" % port)

    def circuit_setups(self, count, timeout=60):
        """Seconds from EXTENDCIRCUIT 0 (a fresh circuit, tor's own choice
        of 3 hops) to its BUILT event, for count circuits one after the
        other, each closed once built; failed ones are left out."""
        ctl = _Control(self.control, timeout)
        try:
            ctl.command("AUTHENTICATE")
            ctl.command("SETEVENTS CIRC")
            out = []
            for _ in range(count):
                t0 = time.monotonic()
                words = ctl.command("EXTENDCIRCUIT 0")[-1].split()
                if len(words) < 2 or words[0] != "EXTENDED":
                    raise TorNetError("EXTENDCIRCUIT: unexpected reply %r" % " ".join(words))
                circ = words[1]
                status = ctl.event(lambda w: len(w) > 2 and w[0] == "CIRC" and w[1] == circ and
                                   w[2] in ("BUILT", "FAILED", "CLOSED"))
                if status == "BUILT":
                    out.append(time.monotonic() - t0)
                    ctl.command("CLOSECIRCUIT %s" % circ)
            return out
        finally:
            ctl.close()

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM every live tor by pid, wait, SIGKILL what is left."""
        live = [n for n in self.nodes if n.alive()]
        for n in live:
            try:
                os.kill(n.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(n.alive() for n in live) and time.monotonic() < deadline:
            time.sleep(0.05)
        for n in live:
            if n.alive():
                try:
                    os.kill(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            n.proc.wait()


def main():
    if len(sys.argv) < 3:
        print("usage: python3 tools/tornet.py DIR PORT...", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        net = TorNet(sys.argv[1], exit_ports=[int(p) for p in sys.argv[2:]])
    except TorNetError as e:
        print("tornet: %s" % e, file=sys.stderr)
        return 1
    try:
        net.start()
        print("tor %s: client bootstrapped in %.1f s; SOCKS5 on %s; files in %s" % (
            tor_version(net.tor), net.bootstrapped_s, net.socks, sys.argv[1]), flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 130
    except TorNetError as e:
        print("tornet: %s" % e, file=sys.stderr)
        return 1
    finally:
        net.stop()


if __name__ == "__main__":
    sys.exit(main())
