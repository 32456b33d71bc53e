"""tools/tornet.py - a private Tor network on loopback or in network
namespaces, for tools/bench.

    net = TorNet(root, exit_ports=(p1, p2))  # files under root
    net.start(timeout)      # keys, torrc files, every tor; waits for the client
    net.wait_stream(port)   # until a stream through the client reaches port
    ...                     # SOCKS5 on net.socks ("127.0.0.1:PORT")
    net.stop()              # every tor by pid: SIGTERM, then SIGKILL

    net = TorNet(root, netns={"delay_ms": 10, "loss_pct": 1, ...})
    net.net_up(build)       # namespaces and links; servers on net.host_addr()
    net.exit_ports = (p1, p2)
    net.start(timeout) ...  # as above; stop() also deletes the namespaces

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

With netns (the shape of tools/ovl_netns.py: delay, loss, rate, seed)
every tor runs in a network namespace of its own made by ovl_netns, as
ovl-testnet's nodes do, with an address of its own (10.S.0.N) and the
same links: every packet between two tors held and dropped by ovl-shaper
at the receiver, each tor's sending rate capped, the host's packets (the
bench's SOCKS connections to the client, the exits' streams to the
bench's servers on 10.S.0.1) untouched. The tors listen on fixed ports of
their own addresses; the exits' policy accepts the host's address (and
the given ports anywhere, for the summary: the namespaces have no route
but to the testnet and the host). All are in one /16, which
TestingTorNetwork already lets into one circuit (EnforceDistinctSubnets
0, said anyway).

Each tor also exits by itself when this process is gone
(__OwningControllerProcess), so a killed bench leaves nothing running for
long; the namespaces of a killed bench go at the next namespace testnet
(ovl_netns sweeps those whose owner is gone). Only Debian's tor and
tor-gencert, ovl_netns and the Python standard library are used.

Run alone (python3 tools/tornet.py [--delay MS --loss PCT --rate MBIT]
DIR PORT...) it starts a network whose exits open PORT..., prints the
SOCKS address and waits for Ctrl-C.
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import ovl_netns  # the namespace mode of ovl-testnet, beside this file

POLL_S = 0.1
# Every tor listens on 127.0.0.2, the servers tor exits to on 127.0.0.1. A
# client asked for an address some exit itself has, and that exit allows,
# sends the stream there alone ("exit enclave": a fourth hop to that exit),
# which the exit refused here.
RELAY_ADDR = "127.0.0.2"
STOP_TIMEOUT = 10.0  # SIGTERM to exit, then SIGKILL
# The namespace mode: every tor has an address of its own, so fixed ports.
NETNS_OR_PORT, NETNS_DIR_PORT, NETNS_SOCKS_PORT = 5000, 7000, 9050

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
        self.addr = self.socks_addr = None  # where it listens; place() sets them
        self.or_port = self.dir_port = self.socks_port = None
        self.fingerprint = self.v3ident = None
        self.proc = None

    def place(self, addr=None):
        """Its addresses and ports: on loopback (addr None) free ports of
        RELAY_ADDR and a SOCKS port on 127.0.0.1; else fixed ports of addr,
        its namespace's address."""
        relay, client = self.role != "client", self.role == "client"
        if addr is None:
            self.addr, self.socks_addr = RELAY_ADDR, "127.0.0.1"
            self.or_port = _free_port(RELAY_ADDR) if relay else None
            self.dir_port = _free_port(RELAY_ADDR) if self.role == "auth" else None
            self.socks_port = _free_port("127.0.0.1") if client else None
        else:
            self.addr = self.socks_addr = addr
            self.or_port = NETNS_OR_PORT if relay else None
            self.dir_port = NETNS_DIR_PORT if self.role == "auth" else None
            self.socks_port = NETNS_SOCKS_PORT if client else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class TorNet:
    """A private Tor network: authorities, relays, exits and one client;
    on loopback, or with netns (ovl_netns's shape) in namespaces."""

    def __init__(self, root, exit_ports=(), authorities=3, relays=1, exits=2, netns=None):
        bins = tor_binaries()
        if bins is None:
            raise TorNetError("no tor or tor-gencert in PATH (apt-get install tor)")
        self.tor, self.gencert = bins
        self.root, self.exit_ports = os.path.abspath(root), tuple(exit_ports)
        root = self.root
        self.nodes = [TorNode(root, "auth%d" % i, "auth") for i in range(1, authorities + 1)]
        self.nodes += [TorNode(root, "relay%d" % i, "relay") for i in range(1, relays + 1)]
        self.nodes += [TorNode(root, "exit%d" % i, "exit") for i in range(1, exits + 1)]
        self.client = TorNode(root, "client", "client")
        self.nodes.append(self.client)
        self.control = os.path.join(self.client.dir, "control")
        self.started_at = self.bootstrapped_s = None
        self.net = None
        if netns is not None:
            self.net = ovl_netns.Netns(self.root, [n.name for n in self.nodes], netns)
        else:
            for n in self.nodes:
                n.place()

    @property
    def socks(self):
        """The client's SOCKS5 address, "HOST:PORT" (once placed)."""
        return "%s:%d" % (self.client.socks_addr, self.client.socks_port)

    def net_up(self, build=None):
        """The namespace mode: make the namespaces, links, rules and shaper
        (ovl_netns; its ovl-shaper found as ovl-testnet finds it, in build
        when given) and place every tor on its address. Nothing to do on
        loopback, or when done already. Undoes what it made when it fails."""
        if self.net is None or self.net.subnet is not None:
            return
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            self.net.up(ovl_netns.find_shaper(build))
        except ovl_netns.NetnsError as e:
            raise TorNetError("namespaces: %s" % e) from None
        for n in self.nodes:
            n.place(self.net.addr_of(n.name))

    def host_addr(self):
        """Where the exits reach the host's servers: 127.0.0.1, or the
        host's address on the namespaces' bridge (after net_up)."""
        return self.net.host_addr() if self.net is not None else "127.0.0.1"

    def links(self):
        """'loopback', or the namespaces' subnet and link settings."""
        if self.net is None:
            return "loopback"
        sh = self.net.shape
        return "a namespace each in 10.%s.0.0/16, %g ms one way, %g %% loss, %s" % (
            self.net.subnet, sh.get("delay_ms", 0), sh.get("loss_pct", 0),
            "%g Mbit/s" % sh["rate_mbit"] if sh.get("rate_mbit") else "no rate limit")

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
                   "-a", "%s:%d" % (n.addr, n.dir_port),
                   "-i", os.path.join(keys, "authority_identity_key"),
                   "-s", os.path.join(keys, "authority_signing_key"), "-c", cert],
                  "tor-gencert for %s" % n.name, stdin="\n")
        with open(cert, encoding="ascii") as f:
            for line in f:
                if line.startswith("fingerprint "):
                    n.v3ident = line.split()[1]
        out = self._run([self.tor, "--list-fingerprint", "--DataDirectory", n.dir,
                         "--ORPort", "%s:%d" % (n.addr, n.or_port), "--Nickname", n.name,
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
            # Already so under TestingTorNetwork: every tor is in one /16
            # (127.0.0.2, or 10.S.0.0/16 in namespaces).
            "EnforceDistinctSubnets 0",
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
                    a.name, a.or_port, a.v3ident, a.addr, a.dir_port, a.fingerprint))
        return lines

    def _torrc(self, n):
        lines = self._common(n)
        if n.role != "client":
            lines += ["SocksPort 0", "ORPort %s:%d" % (n.addr, n.or_port),
                      "Address %s" % n.addr,
                      "ContactInfo ovl-bench@localhost"]
        if n.role == "auth":
            lines += [
                "DirPort %s:%d" % (n.addr, n.dir_port),
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
            # The host's servers and nothing else (see the top of this
            # file): bound to loopback there, in a namespace routed to the
            # testnet and the host only here; the ports for the policy's
            # summary. TestingTorNetwork already lifts the rule against
            # private addresses; say so anyway.
            bind = "127.0.0.1" if self.net is None else n.addr
            lines += ["ExitRelay 1", "ExitPolicyRejectPrivate 0",
                      "ExitPolicyRejectLocalInterfaces 0", "OutboundBindAddressExit %s" % bind,
                      "ExitPolicy accept %s:*" % self.host_addr()]
            lines += ["ExitPolicy accept *:%d" % p for p in self.exit_ports]
            lines += ["ExitPolicy reject *:*"]
        if n.role == "client":
            lines += ["SocksPort %s:%d" % (n.socks_addr, n.socks_port),
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
        """Create the files (and the namespaces, if net_up was not called),
        start every tor (each in its namespace) and wait until the client
        has bootstrapped to 100%. Stops what it started when that fails."""
        try:
            self.net_up()
            self.create()
            self.started_at = time.monotonic()
            for n in self.nodes:
                pre = ovl_netns.preexec(self.net.ns_of(n.name)) if self.net else None
                out = open(os.path.join(n.dir, "stdout.log"), "wb")
                n.proc = subprocess.Popen([self.tor, "-f", n.torrc], stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT,
                                          preexec_fn=pre)
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
            with socket.create_connection((self.client.socks_addr, self.client.socks_port),
                                          timeout=30) as s:
                s.sendall(b"\x05\x01\x00\x05\x01\x00\x01" + socket.inet_aton(self.host_addr()) +
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
        """Wait until a SOCKS5 CONNECT to host_addr():port succeeds through
        the client (exits named in a fresh consensus, a circuit built)."""
        self._wait(lambda: self._stream_works(port), time.monotonic() + timeout,
                   "a stream through tor to %s:%d" % (self.host_addr(), port))

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
        """SIGTERM every live tor by pid, wait, SIGKILL what is left; then
        delete the namespaces (idempotent)."""
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
        if self.net is not None:
            self.net.down()


def main():
    p = argparse.ArgumentParser(prog="tornet.py", description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("ports", nargs="+", type=int, metavar="PORT")
    p.add_argument("--delay", type=float, default=0.0, metavar="MS",
                   help="one-way delay of every link between two tors (namespaces; root)")
    p.add_argument("--loss", type=float, default=0.0, metavar="PCT",
                   help="percent of the packets between two tors dropped (namespaces)")
    p.add_argument("--rate", type=float, default=0.0, metavar="MBIT",
                   help="what each tor sends at most, Mbit/s (namespaces)")
    p.add_argument("--seed", type=int, default=1, help="seed of the packets --loss drops")
    a = p.parse_args()
    shape = None
    if a.delay or a.loss or a.rate:
        shape = {"delay_ms": a.delay, "loss_pct": a.loss, "rate_mbit": a.rate, "seed": a.seed}
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        net = TorNet(a.dir, exit_ports=a.ports, netns=shape)
    except TorNetError as e:
        print("tornet: %s" % e, file=sys.stderr)
        return 1
    try:
        net.start()
        print("tor %s: client bootstrapped in %.1f s; SOCKS5 on %s; exits to %s; links: %s; "
              "files in %s" % (tor_version(net.tor), net.bootstrapped_s, net.socks,
                               net.host_addr(), net.links(), a.dir), flush=True)
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
