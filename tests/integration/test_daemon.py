"""ovld as a process: command line, config checking, identity file,
signals, shutdown and a second daemon on the same control socket."""

import os
import re
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import NODE_ID_RE, OVLD, STOP_TIMEOUT, run, wait_for  # noqa: E402


def test_version(net):
    r = run([OVLD, "--version"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"ovld \d+\.\d+\.\d+", r.stdout), r.stdout
    assert "tcp" in r.stdout, "--version should list the tcp transport: %r" % r.stdout
    r2 = run([OVLD, "-V"])
    assert r2.returncode == 0 and r2.stdout == r.stdout, (r2.returncode, r2.stdout)


def test_help(net):
    r = run([OVLD, "--help"])
    assert r.returncode == 0, r.returncode
    assert "-c" in r.stdout + r.stderr, "help should document -c: %r" % (r.stdout + r.stderr)


def test_usage_error(net):
    r = run([OVLD, "--no-such-option"])
    assert r.returncode == 2, "unknown option: exit %d, want 2" % r.returncode
    assert r.stderr.strip(), "unknown option without a message"


def test_test_config(net):
    n = net.node("n")
    for flag in ("-t", "--test-config"):
        r = run([OVLD, "-c", n.conf, flag])
        assert r.returncode == 0, "%s on a good config: exit %d: %s" % (flag, r.returncode, r.stderr)
    bad = os.path.join(net.dir, "bad.conf")
    with open(bad, "w", encoding="utf-8") as f:
        f.write("[node]\nroles = relay\nno_such_key = 1\n")
    r = run([OVLD, "-c", bad, "-t"])
    assert r.returncode == 2, "-t on a bad config: exit %d, want 2" % r.returncode
    assert "%s:3:" % bad in r.stderr, "want '%s:3:' in stderr: %r" % (bad, r.stderr)
    missing = os.path.join(net.dir, "missing.conf")
    r = run([OVLD, "-c", missing, "-t"])
    assert r.returncode == 2, "missing config: exit %d, want 2" % r.returncode
    assert missing in r.stderr, r.stderr


def test_print_id(net):
    n = net.node("n")  # the harness already ran --print-id once
    assert NODE_ID_RE.match(n.id), n.id
    assert n.print_id() == n.id, "--print-id is not stable"
    key = os.path.join(n.data_dir, "identity.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, oct(os.stat(key).st_mode)
    assert stat.S_IMODE(os.stat(n.data_dir).st_mode) == 0o700, oct(os.stat(n.data_dir).st_mode)
    other = net.node("other")
    assert other.id != n.id, "two fresh identities got the same ID"
    n.start()
    assert n.status()["node_id"] == n.id


def test_key_permissions(net):
    n = net.node("n")
    key = os.path.join(n.data_dir, "identity.key")
    os.chmod(key, 0o644)
    try:
        r = run([OVLD, "-c", n.conf], timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError("ovld kept running with an identity.key of mode 0644")
    assert r.returncode != 0, "ovld started with an identity.key of mode 0644"
    out = r.stdout + r.stderr
    assert re.search(r"permission|mode|chmod|accessible|600|644|unsafe|insecure", out, re.I), \
        "the error should mention the permissions: %r" % out
    assert not os.path.exists(n.sock), "a control socket appeared"


def test_sigterm(net):
    for sig in (signal.SIGTERM, signal.SIGINT):
        n = net.node("n%d" % sig).start()
        assert os.path.exists(n.sock)
        rc = n.stop(sig)
        assert rc == 0, "exit %d after signal %d" % (rc, sig)
        assert not os.path.exists(n.sock), "control socket left behind after signal %d" % sig


def test_ovlctl_shutdown(net):
    m = net.node("m").start()
    n = net.node("n", peers=[m]).start()
    wait_for(lambda: m.id in n.open_peers(), 15.0, "n's link to m")
    r = n.ctl_run("shutdown")
    assert r.returncode == 0, "ovlctl shutdown: exit %d: %s" % (r.returncode, r.stderr)
    assert n.wait_exit() == 0, "ovld exit status after shutdown"
    assert not os.path.exists(n.sock), "control socket left behind after shutdown"
    assert m.alive()
    wait_for(lambda: not m.open_peers(), 10.0, "m to notice the link closed")


def test_sighup_reloads_log_level(net):
    n = net.node("n", log_level="info").start()
    assert n.status()["log_level"] == "info"
    n.write_config(log_level="debug")
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: n.status()["log_level"] == "debug", 10.0, "log_level debug after SIGHUP")
    n.write_config(log_level="warn")
    n.send_signal(signal.SIGHUP)
    wait_for(lambda: n.status()["log_level"] == "warn", 10.0, "log_level warn after SIGHUP")
    assert n.alive()


def test_second_daemon_same_socket(net):
    first = net.node("first").start()
    second = net.node("second", control_socket=first.sock)
    try:
        r = run([OVLD, "-c", second.conf], timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError("a second ovld on the same control socket kept running")
    assert r.returncode != 0, "a second ovld on the same socket exited 0"
    out = r.stdout + r.stderr
    assert first.sock in out or re.search(r"in use|exists|running", out, re.I), \
        "unclear error from the second ovld: %r" % out
    assert first.alive(), "the first ovld died"
    assert os.path.exists(first.sock), "the second ovld removed the first one's socket"
    assert first.status()["node_id"] == first.id


if __name__ == "__main__":
    ovltest.run_tests("test_daemon", [
        test_version,
        test_help,
        test_usage_error,
        test_test_config,
        test_print_id,
        test_key_permissions,
        test_sigterm,
        test_ovlctl_shutdown,
        test_sighup_reloads_log_level,
        test_second_daemon_same_socket,
    ])
