"""ovl_netns - the namespace mode of tools/ovl-testnet: one network
namespace per node, links with a delay, a loss rate and a bandwidth.

The layout (SUB is 10.S.0.0/16, S picked free on this host, under a lock):

    root namespace             hub namespace "ovlS-hub"     node namespaces
    ovlS (10.S.0.1) --veth-- hport --+
                                     br0 (a bridge)
                                     +-- p0 --veth-- eth0 (10.S.0.2) "ovlS-boot"
                                     +-- p1 --veth-- eth0 (10.S.0.3) "ovlS-relay1" ...

Every node has its own address on one bridge, which lives in a namespace
of its own (nothing of it touches the host's interfaces), and the host
reaches every node through the veth ovlS (the test drivers, the bench's
servers, SOCKS clients). Node namespaces have no default route, so a node
cannot send anywhere but to the testnet and the host.

Shaping, node to node only (the host's packets pass untouched):
- delay and loss: in each node namespace, iptables sends every packet
  that comes in on eth0 from another node to NFQUEUE 0 (raw table,
  PREROUTING), and one ovl-shaper process (tests/tools/ovl-shaper.c), bound
  to the queue of every node namespace, holds each one DELAY ms and drops
  LOSS percent of them (seeded). Delaying at the receiver means each packet
  between two nodes waits once: DELAY is the one-way delay of every link,
  2 x DELAY the round trip of a hop. The kernel of the machine this was
  written for has no sch_netem; this needs only NFQUEUE and
  libnetfilter-queue.
- bandwidth: a tbf qdisc on each node's eth0 (egress), RATE Mbit/s.

Everything made is named in D/netns.json before it is made, and in
/run/ovl-testnet/S (which testnet holds subnet S), so that `down` (and
Netns.down) removes it however the driver ended, and so does the next
`up` of any testnet once the old one's driver and nodes are gone (its
shaper, which never ends by itself, is then stopped). Deleting a
namespace takes its veths, addresses, qdiscs and iptables rules with it.
"""

import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DIR = "/run/ovl-testnet"
NETNS_DIR = "/run/netns"
SUBNETS = range(64, 192)   # S of 10.S.0.0/16
CLONE_NEWNET = 0x40000000
SHAPER_TIMEOUT = 10.0      # until ovl-shaper says ready
CMD_TIMEOUT = 30.0


class NetnsError(Exception):
    """The namespace mode cannot run here (not root, no iptables, no
    NFQUEUE, no shaper) or a step failed; the message says which."""


def _run(argv, stdin=None):
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        raise NetnsError("%s: exit %d: %s" % (" ".join(argv[:6]), r.returncode,
                                              (r.stderr or r.stdout).strip()))
    return r.stdout


def _iptables():
    for name in ("iptables-nft", "iptables"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path:
            return path
    return None


def why_unavailable():
    """None when this host can run the namespace mode, else why not."""
    if os.geteuid() != 0:
        return "not root (namespaces, veths and iptables need root)"
    for tool in ("ip", "tc"):
        if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")):
            return "no %s (iproute2)" % tool
    if _iptables() is None:
        return "no iptables (tools/deps installs it)"
    return None


def nfqueue_missing():
    """None when iptables takes an NFQUEUE rule here, else iptables' words:
    tried in a namespace made for it and deleted at once."""
    ns = "ovl-nfq-probe-%d" % os.getpid()
    try:
        _run(["ip", "netns", "add", ns])
        _run(["ip", "netns", "exec", ns, _iptables() + "-restore"],
             "*raw\n-A PREROUTING -i lo -j NFQUEUE --queue-num 0\nCOMMIT\n")
        return None
    except (NetnsError, OSError) as e:
        return str(e)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=CMD_TIMEOUT)


def find_shaper(build=None):
    """The ovl-shaper binary: $OVL_SHAPER, BUILD/tests/ovl-shaper, build/'s,
    or compiled into RUN_DIR from tests/tools/ovl-shaper.c (a release
    build has no tests/)."""
    cands = [os.environ.get("OVL_SHAPER")]
    cands += [os.path.join(b, "tests", "ovl-shaper") for b in (build, os.path.join(REPO, "build"))
              if b]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    src = os.path.join(REPO, "tests", "tools", "ovl-shaper.c")
    out = os.path.join(RUN_DIR, "ovl-shaper")
    if os.access(out, os.X_OK) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    os.makedirs(RUN_DIR, exist_ok=True)
    try:
        flags = _run(["pkg-config", "--cflags", "--libs", "libnetfilter_queue"]).split()
        _run(["cc", "-std=c11", "-O2", "-Wall", "-o", out + ".tmp", src] + flags)
    except (NetnsError, OSError) as e:
        raise NetnsError("no ovl-shaper and cannot build it (libnetfilter-queue-dev: "
                         "tools/deps): %s" % e) from None
    os.replace(out + ".tmp", out)
    return out


def _setns(path):
    """Move the calling thread (a child before exec) into namespace path."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(fd)


def preexec(ns):
    """A Popen preexec_fn that starts the child in namespace ns (no new
    process in between: the pid is the program's)."""
    path = os.path.join(NETNS_DIR, ns)
    return lambda: _setns(path)


def _pid_is(pid, word):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return word.encode() in f.read()
    except OSError:
        return False


class Netns:
    """The namespaces, veths, bridge, rules and shaper of one testnet.

    shape: {"delay_ms": float, "loss_pct": float, "rate_mbit": float,
    "seed": int}; names: the node names, in order (node k gets 10.S.0.(k+2)).
    """

    def __init__(self, root, names, shape):
        self.root = os.path.abspath(root)
        self.names = list(names)
        self.shape = dict(shape)
        self.state_path = os.path.join(self.root, "netns.json")
        self.subnet = None
        self.shaper_pid = None

    # -- addresses and names ------------------------------------------------

    def prefix(self):
        return "ovl%d" % self.subnet

    def ns_of(self, name):
        return "%s-%s" % (self.prefix(), name)

    def addr_of(self, name):
        k = self.names.index(name) + 2
        return "10.%d.%d.%d" % (self.subnet, k // 256, k % 256)

    def host_addr(self):
        return "10.%d.0.1" % self.subnet

    def hub(self):
        return self.ns_of("hub")

    def host_if(self):
        return self.prefix()

    def namespaces(self):
        return [self.hub()] + [self.ns_of(n) for n in self.names]

    # -- state ---------------------------------------------------------------

    def _save(self):
        doc = {"subnet": self.subnet, "names": self.names, "shape": self.shape,
               "namespaces": self.namespaces(), "host_if": self.host_if(),
               "shaper_pid": self.shaper_pid, "owner": os.getpid()}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, self.state_path)

    @classmethod
    def load(cls, root):
        """The Netns recorded in root/netns.json, or None."""
        path = os.path.join(os.path.abspath(root), "netns.json")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return None
        n = cls(root, doc["names"], doc["shape"])
        n.subnet, n.shaper_pid = doc["subnet"], doc.get("shaper_pid")
        return n

    def _claim_subnet(self):
        """Pick S under the lock: not held by a live testnet, not routed on
        this host; sweep the testnets whose processes are all gone."""
        os.makedirs(RUN_DIR, exist_ok=True)
        with open(os.path.join(RUN_DIR, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            routes = _run(["ip", "-4", "route", "show", "table", "all"])
            for s in SUBNETS:
                reg = os.path.join(RUN_DIR, str(s))
                if os.path.exists(reg) and not _sweep(reg):
                    continue
                if (" 10.%d." % s) in " " + routes.replace("\n", " ") or \
                        os.path.exists(os.path.join(NETNS_DIR, "ovl%d-hub" % s)):
                    continue
                self.subnet = s
                with open(reg, "w", encoding="utf-8") as f:
                    f.write(self.root + "\n")
                self._save()
                return
        raise NetnsError("no free 10.S.0.0/16 for a testnet (S %d..%d all taken)"
                         % (SUBNETS[0], SUBNETS[-1]))

    # -- up and down -------------------------------------------------------

    def up(self, shaper=None, log=None):
        """Make the namespaces, the bridge, the veths, the addresses, the
        rules and the qdiscs, and start the shaper; on failure undo all."""
        why = why_unavailable()
        if why:
            raise NetnsError(why)
        self._claim_subnet()
        try:
            self._links()
            self._shaping()
            if self._delays():
                self._start_shaper(shaper or find_shaper(), log)
        except BaseException:
            self.down()
            raise

    def _links(self):
        hub = self.hub()
        cmds = ["netns add %s" % ns for ns in self.namespaces()]
        cmds.append("link add %s type veth peer name hport netns %s" % (self.host_if(), hub))
        for k, name in enumerate(self.names):
            cmds.append("link add eth0 netns %s type veth peer name p%d netns %s"
                        % (self.ns_of(name), k, hub))
        cmds += ["addr add %s/16 dev %s" % (self.host_addr(), self.host_if()),
                 "link set %s up" % self.host_if()]
        _run(["ip", "-b", "-"], "\n".join(cmds) + "\n")
        hubcmds = ["link set lo up", "link add br0 type bridge", "link set br0 up",
                   "link set hport master br0", "link set hport up"]
        for k in range(len(self.names)):
            hubcmds += ["link set p%d master br0" % k, "link set p%d up" % k]
        _run(["ip", "-n", hub, "-b", "-"], "\n".join(hubcmds) + "\n")
        for name in self.names:
            _run(["ip", "-n", self.ns_of(name), "-b", "-"],
                 "link set lo up\naddr add %s/16 dev eth0\nlink set eth0 up\n"
                 % self.addr_of(name))

    def _delays(self):
        return self.shape.get("delay_ms", 0) > 0 or self.shape.get("loss_pct", 0) > 0

    def _shaping(self):
        rate = self.shape.get("rate_mbit", 0)
        rule = ("*raw\n-A PREROUTING -s %s -j RETURN\n"
                "-A PREROUTING -i eth0 -s 10.%d.0.0/16 -j NFQUEUE --queue-num 0\nCOMMIT\n"
                % (self.host_addr(), self.subnet))
        for name in self.names:
            ns = self.ns_of(name)
            if self._delays():
                _run(["ip", "netns", "exec", ns, _iptables() + "-restore"], rule)
            if rate > 0:
                burst = max(16000, int(rate * 1e6 / 8 / 100))  # 10 ms at the rate
                _run(["tc", "-n", ns, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
                      "%dkbit" % int(rate * 1000), "burst", str(burst), "latency", "50ms"])

    def _start_shaper(self, shaper, log):
        argv = [shaper, "--delay-us", str(int(self.shape.get("delay_ms", 0) * 1000)),
                "--loss", repr(float(self.shape.get("loss_pct", 0))),
                "--seed", str(int(self.shape.get("seed", 1)))]
        argv += [os.path.join(NETNS_DIR, self.ns_of(n)) for n in self.names]
        logf = open(log or os.path.join(self.root, "shaper.log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=logf, start_new_session=True, close_fds=True)
        logf.close()
        self.shaper_pid = p.pid
        self._save()
        ready, _, _ = select.select([p.stdout], [], [], SHAPER_TIMEOUT)
        line = p.stdout.readline() if ready else b""
        p.stdout.close()
        if line.strip() != b"ready":
            raise NetnsError("ovl-shaper did not start (see %s)" % (log or os.path.join(
                self.root, "shaper.log")))
        self._proc = p  # reaped by down()

    def down(self):
        """Stop the shaper, delete every namespace (their veths, rules and
        qdiscs go with them) and the host's veth; idempotent."""
        pid = self.shaper_pid
        if pid and _pid_is(pid, "ovl-shaper"):
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while _pid_is(pid, "ovl-shaper") and time.monotonic() < deadline:
                    proc = getattr(self, "_proc", None)
                    if proc is not None and proc.poll() is not None:
                        break
                    time.sleep(0.02)
                if _pid_is(pid, "ovl-shaper") and getattr(self, "_proc", None) is None:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if getattr(self, "_proc", None) is not None:
            self._proc.wait()
            self._proc = None
        if self.subnet is None:
            return
        for ns in self.namespaces():
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                               timeout=CMD_TIMEOUT)
        subprocess.run(["ip", "link", "del", self.host_if()], capture_output=True,
                       timeout=CMD_TIMEOUT)
        reg = os.path.join(RUN_DIR, str(self.subnet))
        try:
            with open(reg, encoding="utf-8") as f:
                mine = f.read().strip() == self.root
            if mine:
                os.unlink(reg)
        except OSError:
            pass


def _sweep(reg):
    """Remove the testnet registered in reg when neither its driver nor
    any of its nodes runs any more (the driver was killed; the shaper is
    stopped here); True when the subnet is free."""
    try:
        with open(reg, encoding="utf-8") as f:
            root = f.read().strip()
    except OSError:
        return True
    n = Netns.load(root)
    if n is None:
        os.unlink(reg)
        return True
    try:
        with open(n.state_path, encoding="utf-8") as f:
            owner = json.load(f).get("owner")
        if owner and os.path.exists("/proc/%d" % owner):
            return False  # its driver still runs (maybe still making it)
    except (OSError, ValueError):
        pass
    # Not the shaper's pid: it never ends by itself, and down() stops it;
    # counted, it would hold the subnet of a killed driver for good.
    pids = []
    try:
        with open(os.path.join(root, "nodes.json"), encoding="utf-8") as f:
            pids += [x["pid"] for x in json.load(f)["nodes"] if x.get("pid")]
    except (OSError, ValueError, KeyError):
        pass
    if any(_pid_is(p, "ovl") for p in pids):
        return False
    n.down()
    try:
        os.unlink(reg)
    except OSError:
        pass
    return True


if __name__ == "__main__":
    print(why_unavailable() or "available", file=sys.stderr)
