"""ovld under a service manager (systemd's Type=notify, without systemd):
READY=1 once the control socket answers, WATCHDOG=1 again and again when
WATCHDOG_USEC asks for it, RELOADING=1 and READY=1 around SIGHUP,
and ovlctl reload, STOPPING=1 at shutdown, on an abstract socket and on a
path; a bad or absent NOTIFY_SOCKET changes nothing but a warning;
STATE_DIRECTORY is the data directory unless the config names one, at
start and on a reload."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import OVLD, SLACK, START_TIMEOUT, run  # noqa: E402


class Manager:
    """The manager's end: a datagram socket that ovld's messages reach."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path:
            self.sock.bind(path)
            self.env = path
        else:
            name = "ovl-notify-%d-%s" % (os.getpid(), os.urandom(6).hex())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        self.sock.settimeout(ovltest.POLL_S)
        self.got = []  # every message, in order

    def next(self, want, timeout=START_TIMEOUT):
        """Receive until a message that holds the line want; return it."""
        deadline = time.monotonic() + timeout * SLACK
        while time.monotonic() < deadline:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.got.append(msg)
            if want in msg.split("\n"):
                return msg
        raise AssertionError("no %s within %.0f s; got %r" % (want, timeout * SLACK, self.got))

    def close(self):
        self.sock.close()


def test_abstract_ready_watchdog_reload_stop(net):
    m = Manager()
    n = net.node("n")
    try:
        n.start(wait=False, env={"NOTIFY_SOCKET": m.env, "WATCHDOG_USEC": "200000"})
        ready = m.next("READY=1")
        # READY=1 comes once the node is up: its control socket answers now.
        st = n.status()
        assert st["node_id"] == n.id
        assert "STATUS=node %s, roles relay" % n.id in ready.split("\n"), ready
        for _ in range(3):
            m.next("WATCHDOG=1")
        n.send_signal(signal.SIGHUP)
        m.next("RELOADING=1")
        m.next("READY=1")
        r = n.ctl_run("reload")  # the same reload as SIGHUP's, the same frame
        assert r.returncode == 0, r.stderr
        m.next("RELOADING=1")
        m.next("READY=1")
        n.send_signal(signal.SIGTERM)
        m.next("STOPPING=1")
        assert n.wait_exit() == 0
    finally:
        m.close()


def test_path_socket_ovlctl_shutdown(net):
    m = Manager(os.path.join(net.dir, "notify"))
    n = net.node("n")
    try:
        n.start(wait=False, env={"NOTIFY_SOCKET": m.env, "WATCHDOG_USEC": "200000",
                                 "WATCHDOG_PID": str(os.getpid())})
        m.next("READY=1")
        r = n.ctl_run("shutdown")
        assert r.returncode == 0, r.stderr
        m.next("STOPPING=1")
        assert n.wait_exit() == 0
        # The watchdog was another process's: none was sent.
        assert not any("WATCHDOG=1" in g.split("\n") for g in m.got), m.got
    finally:
        m.close()


def test_bad_or_absent_socket(net):
    for i, value in enumerate(["relative/notify", "@", os.path.join(net.dir, "nobody-here")]):
        n = net.node("n%d" % i)
        n.start(env={"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "100000"})
        assert n.status()["node_id"] == n.id
        n.stop()
        assert "notify the service manager" in n.log(), n.log()
    n = net.node("plain")
    n.start(env={"WATCHDOG_USEC": "100000"})  # no NOTIFY_SOCKET: not a word about it
    n.stop()
    assert "notify" not in n.log().lower(), n.log()


def test_state_directory(net):
    n = net.node("n")
    state = os.path.join(net.dir, "state")
    os.mkdir(state, 0o700)
    env = dict(os.environ, STATE_DIRECTORY=state + ":" + os.path.join(net.dir, "other"))
    # Named by the config: STATE_DIRECTORY is ignored.
    r = run([OVLD, "-c", n.conf, "--print-id"], env=env)
    assert r.returncode == 0 and r.stdout.strip() == n.id, (r.returncode, r.stdout, r.stderr)
    assert not os.listdir(state), os.listdir(state)
    # Not named: the first of STATE_DIRECTORY's paths.
    bare = os.path.join(net.dir, "bare.conf")
    with open(bare, "w", encoding="utf-8") as f:
        f.write("[node]\nroles = relay\ncontrol_socket = %s\n" % n.sock)
    r = run([OVLD, "-c", bare, "--print-id"], env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(os.path.join(state, "identity.key")), os.listdir(state)
    assert not os.path.exists(os.path.join(net.dir, "other"))
    r2 = run([OVLD, "-c", bare, "--print-id"], env=env)
    assert r2.stdout == r.stdout and r.stdout.strip() != n.id, (r.stdout, r2.stdout)
    # A reload reads the data directory the same way: nothing to restart.
    log = open(os.path.join(net.dir, "bare.log"), "wb")
    p = subprocess.Popen([OVLD, "-c", bare], env=env, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
    log.close()
    ovltest._procs.append(p)
    try:
        ovltest.wait_for(lambda: n.ctl("status")["pid"] == p.pid, START_TIMEOUT, "bare ovld")
        rep = n.ctl("reload")
        assert rep["changed"] == [] and rep["restart"] == [], rep
    finally:
        p.terminate()
        p.wait(ovltest.STOP_TIMEOUT)


if __name__ == "__main__":
    ovltest.run_tests("test_notify", [
        test_abstract_ready_watchdog_reload_stop,
        test_path_socket_ovlctl_shutdown,
        test_bad_or_absent_socket,
        test_state_directory,
    ])
