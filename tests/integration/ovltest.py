"""ovltest - a small harness that runs real ovld processes on loopback.

Each test gets a Net: a fresh temporary directory holding one subdirectory
per Node (config, data_dir, control socket, log). Nodes are started with
Popen, waited for by polling `ovlctl --json status` with a deadline, and
stopped by pid. Every process the harness starts is killed at exit whatever
happens. The temporary directory is removed after a passing test and kept
(its path and the node logs printed) after a failing one.

Binaries come from the environment (OVLD, OVLCTL, OVL_PROBE, set by
tests/meson.build) or default to the build/ tree of the repository.

Whole networks (a bootstrap, relays, clients) come from tools/ovl-testnet:
testnet(net, relays=N, ...) starts one inside a Net and stops it with it.
"""

import atexit
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool(var, *rel):
    return os.environ.get(var) or os.path.join(REPO, "build", *rel)


OVLD = _tool("OVLD", "src", "app", "ovld")
OVLCTL = _tool("OVLCTL", "src", "app", "ovlctl")
OVL_PROBE = _tool("OVL_PROBE", "tests", "ovl-probe")

POLL_S = 0.05        # polling interval of every wait
START_TIMEOUT = 10.0  # until a started node answers on its control socket
STOP_TIMEOUT = 10.0   # until a signalled node exits, then SIGKILL
CMD_TIMEOUT = 20.0    # any one ovlctl/ovld/ovl-probe invocation

NODE_ID_RE = re.compile(r"^[a-z2-7]{52}$")
SUITES = ("aes256gcm", "chacha20poly1305")

_procs = []  # every Popen the harness started
_testnet_mod = []  # tools/ovl-testnet once imported


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: leave through atexit so nodes die too.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_sigterm)


class CtlError(Exception):
    """ovlctl exited non-zero."""

    def __init__(self, args, rc, out, err):
        super().__init__("ovlctl %s: exit %d: %s" % (" ".join(args), rc, (err or out).strip()))
        self.rc, self.out, self.err = rc, out, err


class Skip(Exception):
    """Raised by a test that cannot run on this host."""


# What a poll may raise while a daemon settles; load_testnet() adds its own.
RETRY_ERRORS = [CtlError, KeyError, IndexError, ValueError, OSError]


# Every deadline of wait_for is this many times what the test names: tests
# wait for events, and a busy machine may take much longer than an idle one
# (OVL_TEST_SLACK overrides it).
SLACK = float(os.environ.get("OVL_TEST_SLACK", "4"))


def wait_for(pred, timeout=10.0, what="condition"):
    """Poll pred until it returns a true value (returned); fail at the
    deadline (timeout times SLACK).

    Exceptions a poll can raise while a daemon settles (ovlctl failing,
    missing keys) count as "not yet" and are reported if time runs out.
    """
    deadline = time.monotonic() + timeout * SLACK
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = v
        except tuple(RETRY_ERRORS) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout * SLACK, what, last))
        time.sleep(POLL_S)


def run(argv, input=None, timeout=CMD_TIMEOUT, env=None):
    """Run a command to completion (in env, a whole environment, when
    given), capturing text output."""
    return subprocess.run(argv, input=input, capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


def parse_kv(text):
    """Parse key=value lines (a raw control reply) into a list of pairs."""
    pairs = []
    for line in text.splitlines():
        if line == "":
            continue
        k, sep, v = line.partition("=")
        assert sep, "reply line without '=': %r" % line
        pairs.append((k, v))
    return pairs


class Node:
    """One ovld process with its own directory, config and control socket."""

    def __init__(self, net, name, roles="relay", aead=None, log_level="info", link=None,
                 peers=(), listen="tcp://127.0.0.1:0", control_socket=None, extra=""):
        self.net, self.name = net, name
        self.dir = os.path.join(net.dir, name)
        os.mkdir(self.dir, 0o700)
        self.conf = os.path.join(self.dir, "ovld.conf")
        self.data_dir = os.path.join(self.dir, "data")
        self.sock = control_socket or os.path.join(self.dir, "ctl.sock")
        self.log_path = os.path.join(self.dir, "ovld.log")
        self.roles, self.aead, self.log_level, self.listen = roles, aead, log_level, listen
        self.link = {"handshake_timeout": 1000, "reconnect_min": 200, "reconnect_max": 1000}
        self.link.update(link or {})
        self.peer_list = list(peers)
        self.extra = extra
        self.proc = None
        self.exit_expected = False
        self.port = None
        self.write_config()
        self.id = self.print_id()

    # -- configuration -------------------------------------------------

    def peer_entry(self, name=None):
        """This node as a (name, address, id) peer of another node."""
        assert self.port, "node %s has no listening port yet (not started)" % self.name
        return (name or self.name, self.addr, self.id)

    def config_text(self):
        lines = ["[node]", "roles = " + self.roles, "data_dir = " + self.data_dir]
        if self.listen:
            lines.append("listen = " + self.listen)
        lines.append("control_socket = " + self.sock)
        if self.aead:
            lines.append("aead = " + self.aead)
        lines += ["", "[log]", "level = " + self.log_level, "", "[link]"]
        lines += ["%s = %s" % kv for kv in self.link.items()]
        for p in self.peer_list:
            name, addr, pid = p.peer_entry() if isinstance(p, Node) else p
            lines += ["", "[peer.%s]" % name, "address = " + addr, "id = " + pid]
        return "\n".join(lines) + "\n" + self.extra

    def write_config(self, **changes):
        """Rewrite the config file, after applying attribute changes."""
        for k, v in changes.items():
            assert hasattr(self, k), k
            setattr(self, k, v)
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(self.config_text())

    def print_id(self):
        r = run([OVLD, "-c", self.conf, "--print-id"])
        assert r.returncode == 0, "ovld --print-id failed (%d): %s" % (r.returncode, r.stderr)
        nid = r.stdout.strip()
        assert NODE_ID_RE.match(nid), "--print-id printed %r" % r.stdout
        return nid

    # -- process -------------------------------------------------------

    @property
    def addr(self):
        return "tcp://127.0.0.1:%d" % self.port

    def start(self, wait=True, env=None):
        """Start ovld (with env added to the environment); with wait, poll
        until its control socket answers."""
        assert self.proc is None or self.proc.poll() is not None, "%s already running" % self.name
        self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([OVLD, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **env) if env else None)
        log.close()
        _procs.append(self.proc)
        self.exit_expected = False
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %d during start-up:\n%s"
                                     % (self.name, self.proc.returncode, self.log()))
            return self.status()

        st = wait_for(ready, START_TIMEOUT, "%s to answer on %s" % (self.name, self.sock))
        if self.listen:
            assert isinstance(st.get("listen"), list) and st["listen"], \
                "status of %s has no listen address: %r" % (self.name, st)
            self.port = int(st["listen"][0].rsplit(":", 1)[1])
            assert self.port > 0, st["listen"]
        return st

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the process to exit by itself; return its exit status."""
        self.exit_expected = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %.0f s" % (self.name, timeout))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Signal the process and wait; SIGKILL and fail after STOP_TIMEOUT."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit()

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- control -------------------------------------------------------

    def ctl_run(self, *args, input=None):
        """Run ovlctl against this node; return the CompletedProcess."""
        return run([OVLCTL, "-s", self.sock] + list(args), input=input)

    def ctl(self, *args):
        """Run `ovlctl --json ARGS` and return the parsed JSON."""
        argv = ["--json"] + list(args)
        r = self.ctl_run(*argv)
        if r.returncode != 0:
            raise CtlError(argv, r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout)

    def status(self):
        return self.ctl("status")

    def peers(self):
        return self.ctl("peers")

    def raw(self, text):
        """Send text verbatim with `ovlctl raw`; return (exit status, reply pairs)."""
        r = self.ctl_run("raw", input=text)
        assert r.returncode not in (2, 3), "ovlctl raw failed (%d): %s" % (r.returncode, r.stderr)
        return r.returncode, parse_kv(r.stdout)

    def connect(self, timeout=5.0):
        """Open a plain unix socket to the control socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                s.connect(self.sock)
                return s
            except BlockingIOError:
                # the listen backlog is full until the daemon accepts
                if time.monotonic() >= deadline:
                    s.close()
                    raise
                time.sleep(0.01)

    def open_peers(self):
        """Return {peer id: record} of this node's open links."""
        return {p["peer"]: p for p in self.peers() if p.get("state") == "open"}


class Net:
    """The nodes of one test, in one temporary directory."""

    def __init__(self, name):
        self.name = name
        # Short paths: a control socket path must fit sun_path (107 bytes).
        self.dir = tempfile.mkdtemp(prefix="ovl-", dir="/tmp")
        self.nodes = []
        self.closers = []  # fn(failed) -> list of problems, run by close()

    def node(self, name, **kw):
        n = Node(self, name, **kw)
        self.nodes.append(n)
        return n

    def on_close(self, fn):
        """Have close() call fn(failed), which returns a list of problems."""
        self.closers.append(fn)

    def close(self, failed):
        """Stop every node; return the problems found (unexpected exits)."""
        problems = []
        for fn in self.closers:
            problems += fn(failed)
        for n in self.nodes:
            if n.proc is None:
                continue
            if n.proc.poll() is not None and not n.exit_expected:
                problems.append("%s exited unexpectedly with %d" % (n.name, n.proc.returncode))
                continue
            if n.proc.poll() is None:
                try:
                    rc = n.stop()
                except AssertionError as e:
                    problems.append(str(e))
                    continue
                if rc != 0:
                    problems.append("%s exited with %d on SIGTERM" % (n.name, rc))
        if failed or problems:
            print("kept %s" % self.dir)
            for n in self.nodes:
                print("---- log of %s (%s) ----" % (n.name, n.log_path))
                print(n.log().rstrip())
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def stream_through(tn, a, b, label, during, count=60, at=15):
    """Send count messages from node a to node b (testnet tn), calling
    during() before message at; wait until every one is acknowledged and
    arrived exactly once, with no message failed on a. Returns the ids."""
    failed0 = a.status()["client_messages_failed"]
    sent, got = [], {}

    def drain():
        for m in tn.ctl(b.name, "recv", "--max", "1000"):
            assert m["id"] not in got, "message %s delivered twice" % m["id"]
            got[m["id"]] = m

    drain()  # what b holds from before is not ours
    got.clear()
    for i in range(count):
        if i == at:
            during()
        sent.append(tn.ctl(a.name, "send", "--to", b.id, "%s %d" % (label, i))["id"])
        if i % 10 == 9:
            drain()
        time.sleep(0.05)

    def settled():
        drain()
        st = a.status()
        assert st["client_messages_failed"] == failed0, "messages failed: %r" % st
        return st["client_send_queued"] == 0 and set(sent) <= set(got)

    wait_for(settled, 90.0, "every message acknowledged and received")
    assert set(got) == set(sent), "unexpected ids arrived"
    return sent


def require_quic():
    """Exit 77 (meson's "skipped") unless ovld was built with QUIC."""
    r = run([OVLD, "--version"])
    if r.returncode != 0 or "quic" not in r.stdout:
        print("SKIP: %s was built without QUIC (%s)" % (OVLD, r.stdout.strip()))
        sys.exit(77)


def load_testnet():
    """Import tools/ovl-testnet (a script without .py) as a module, once."""
    if not _testnet_mod:
        path = os.path.join(REPO, "tools", "ovl-testnet")
        loader = importlib.machinery.SourceFileLoader("ovl_testnet", path)
        spec = importlib.util.spec_from_loader("ovl_testnet", loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        RETRY_ERRORS.append(mod.ControlError)
        _testnet_mod.append(mod)
    return _testnet_mod[0]


def testnet(net, relays, clients=2, timeout=60.0, **settings):
    """Start a testnet (tools/ovl-testnet) in net's directory and wait until
    every node is ready; net.close() stops it by pid and reports nodes that
    died unless the test stopped them (tn.kill, tn.stop). Settings as Testnet's
    (heartbeat, ttl, chain_cache_ttl, chain_length, log_level, extra, ...)."""
    mod = load_testnet()
    settings.setdefault("log_level", "info")
    tn = mod.Testnet(os.path.join(net.dir, "tn"), relays, clients, OVLD, OVLCTL, **settings)
    tn.on_spawn = _procs.append
    net.on_close(lambda failed: _close_testnet(tn, failed))
    tn.create()
    tn.start(timeout=timeout)
    return tn


def _close_testnet(tn, failed):
    problems = ["%s exited unexpectedly with %d" % (n.name, n.proc.returncode)
                for n in tn.nodes if n.proc is not None and n.proc.poll() is not None
                and n.name not in tn.stopped]
    live = [n for n in tn.nodes if n.proc is not None and n.proc.poll() is None]
    killed = tn.stop()
    for n in live:
        if n.name in killed:
            problems.append("%s needed SIGKILL after SIGTERM" % n.name)
        elif n.proc.returncode != 0:
            problems.append("%s exited with %d on SIGTERM" % (n.name, n.proc.returncode))
    if failed or problems:
        print("kept %s" % tn.root)
        for n in tn.nodes:
            if os.path.exists(n.log):
                print("---- last lines of %s (%s) ----" % (n.name, n.log))
                print(tail(n.log))
    return problems


def tail(path, lines=40):
    """The last lines of a file, or a note saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError as e:
        return "(cannot read: %s)" % e


def _selected(tests):
    wanted = set(sys.argv[1:])
    return [t for t in tests if not wanted or t.__name__ in wanted]


def run_tests(module, tests, fixture=None):
    """Run each test and exit with the result.

    Without fixture each test gets its own Net: test(net). With fixture, one
    Net is shared in order: ctx = fixture(net), then test(ctx) for each.
    Prints "MODULE: N passed, N failed" last and exits 1 on any failure.
    """
    passed = failed = skipped = 0
    tests = _selected(tests)
    shared = Net(module) if fixture else None
    ctx, setup_error = None, None
    if fixture:
        try:
            ctx = fixture(shared)
        except Exception:  # noqa: BLE001 - report any setup failure
            setup_error = traceback.format_exc()
    for t in tests:
        name = t.__name__
        net = shared or Net(name)
        ok = skip = False
        t0 = time.monotonic()
        try:
            if setup_error:
                raise AssertionError("fixture failed:\n" + setup_error)
            t(ctx if fixture else net)
            ok = True
        except Skip as e:
            skip = ok = True
            print("SKIP %s: %s" % (name, e))
        except Exception:  # noqa: BLE001 - every failure is reported the same way
            traceback.print_exc()
        if not fixture:
            problems = net.close(failed=not ok)
            if problems and ok:
                ok = False
                print("problems after %s: %s" % (name, "; ".join(problems)))
        if skip:
            skipped += 1
            continue
        print("%s %s (%.1f s)" % ("PASS" if ok else "FAIL", name, time.monotonic() - t0))
        sys.stdout.flush()
        if ok:
            passed += 1
        else:
            failed += 1
    if shared:
        problems = shared.close(failed=failed > 0)
        if problems:
            print("problems at the end: %s" % "; ".join(problems))
            failed += 1
    line = "%s: %d passed, %d failed" % (module, passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    sys.exit(1 if failed else 0)
