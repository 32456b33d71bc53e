"""What `meson install` puts where, and the paths compiled into ovld.

Run as `test_install.py SOURCE_ROOT BUILD_ROOT MESON` (tests/meson.build):
installs the build tree into a temporary DESTDIR and checks that every file
is where a packager expects it and nothing else is there, that the
installed ovld's default config is the absolute PREFIX/SYSCONFDIR path,
that the installed unit starts that ovld with that config and its
RuntimeDirectory holds the default control socket, and that the example
config passes `ovld -t`. Then it configures (without building) throwaway
trees for the prefixes /usr and /opt/ovl and checks meson's rule for them
(/usr gives /etc/ovl and /var/lib/ovl, another prefix its own etc and
var), -Dsystemdsystemunitdir, and that a relative -Dcontrol_socket is
refused.
"""

import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ovltest  # noqa: E402
from ovltest import run  # noqa: E402

SOURCE, BUILD, MESON = (sys.argv[1:4] if len(sys.argv) >= 4 else
                        (ovltest.REPO, os.path.join(ovltest.REPO, "build"), "meson"))
del sys.argv[1:4]  # what is left names the tests to run


def options(build):
    r = run([MESON, "introspect", build, "--buildoptions"])
    assert r.returncode == 0, r.stderr
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def expected(o):
    """{installed path: what it is} for a tree's options, by meson's rule:
    a directory option relative to the prefix is under it."""
    p = o["prefix"]
    man = os.path.join(p, o["mandir"])
    want = {
        os.path.join(p, o["sbindir"], "ovld"): "ovld",
        os.path.join(p, o["bindir"], "ovlctl"): "ovlctl",
        os.path.join(man, "man8", "ovld.8"): "man page",
        os.path.join(man, "man8", "ovlctl.8"): "man page",
        os.path.join(man, "man5", "ovld.conf.5"): "man page",
        os.path.join(p, o["datadir"], "doc", "ovl", "examples", "ovld.conf"): "example",
    }
    unitdir = o["systemdsystemunitdir"] or os.path.join(p, "lib", "systemd", "system")
    if unitdir != "no":
        want[os.path.join(unitdir, "ovld.service")] = "unit"
    return want


def unit_settings(path):
    with open(path, encoding="utf-8") as f:
        return dict(line.split("=", 1) for line in f.read().splitlines()
                    if re.match(r"^[A-Z][A-Za-z]*=", line))


def test_destdir(tmp):
    o = options(BUILD)
    want = expected(o)
    dest = os.path.join(tmp, "dest")
    r = run([MESON, "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
             "--skip-subprojects", "--quiet"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = set()
    for d, _, files in os.walk(dest):
        got |= {os.path.join(d, f)[len(dest):] for f in files}
    missing = sorted(set(want) - got)
    assert not missing, "not installed: %s (installed: %s)" % (missing, sorted(got))
    assert got == set(want), "installed besides: %s" % sorted(got - set(want))
    for path, what in want.items():
        mode = os.stat(dest + path).st_mode & 0o777
        assert mode == (0o755 if what in ("ovld", "ovlctl") else 0o644), (path, oct(mode))

    ovld = dest + os.path.join(o["prefix"], o["sbindir"], "ovld")
    ovlctl = dest + os.path.join(o["prefix"], o["bindir"], "ovlctl")
    conf = os.path.join(o["prefix"], o["sysconfdir"], "ovl", "ovld.conf")
    r = run([ovld, "--help"])
    m = re.search(r"configuration file \(default (\S+)\)", r.stdout)
    assert r.returncode == 0 and m, r.stdout
    assert m.group(1).startswith("/") and m.group(1) == conf, (m.group(1), conf)
    r = run([ovlctl, "--help"])
    m = re.search(r"\(default (/\S+\.sock)\)", r.stdout)
    assert m, r.stdout
    sock = m.group(1)

    unit = [p for p, what in want.items() if what == "unit"]
    if unit:
        s = unit_settings(dest + unit[0])
        assert s["ExecStart"] == "%s -c %s" % (os.path.join(o["prefix"], o["sbindir"], "ovld"),
                                               conf), s["ExecStart"]
        assert s["Type"] == "notify", s
        assert os.path.dirname(sock) == "/run/" + s["RuntimeDirectory"], (sock, s)
        assert s["StateDirectory"] == "ovl", s
    example = [p for p, what in want.items() if what == "example"][0]
    r = run([ovld, "-t", "-c", dest + example])
    assert r.returncode == 0, r.stdout + r.stderr


def configure(tmp, name, *args):
    """Configure a throwaway tree (no build) and return its directory."""
    build = os.path.join(tmp, name)
    r = run([MESON, "setup", build, SOURCE, "--wrap-mode=nodownload", "-Dtests=false",
             "-Dquic=disabled"] + list(args), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return build


def defaults(build):
    with open(os.path.join(build, "ovl_config.h"), encoding="utf-8") as f:
        return dict(re.findall(r'#define (OVL_DEFAULT_\w+) "([^"]*)"', f.read()))


def test_prefixes(tmp):
    # /usr with the unit where Debian 12 keeps units; another prefix without one.
    for prefix, etc, data, unitdir in (
            ("/usr", "/etc/ovl", "/var/lib/ovl", "/lib/systemd/system"),
            ("/opt/ovl", "/opt/ovl/etc/ovl", "/opt/ovl/var/lib/ovl", "no")):
        build = configure(tmp, "prefix" + prefix.replace("/", "-"), "--prefix=" + prefix,
                          "-Dsystemdsystemunitdir=" + unitdir)
        d = defaults(build)
        assert d["OVL_DEFAULT_CONFIG"] == etc + "/ovld.conf", (prefix, d)
        assert d["OVL_DEFAULT_DATA_DIR"] == data, (prefix, d)
        assert d["OVL_DEFAULT_SOCKET"] == "/run/ovl/ovld.sock", (prefix, d)
        r = run([MESON, "introspect", build, "--installed"])
        installed = set(json.loads(r.stdout).values())
        assert installed == set(expected(options(build))), (prefix, sorted(installed))
        units = [p for p in installed if p.endswith(".service")]
        if unitdir == "no":
            assert not units, units
            continue
        assert units == [unitdir + "/ovld.service"], units
        s = unit_settings(os.path.join(build, "dist", "ovld.service"))
        assert s["ExecStart"] == "%s/sbin/ovld -c %s/ovld.conf" % (prefix, etc), s["ExecStart"]
    r = run([MESON, "setup", os.path.join(tmp, "relsock"), SOURCE, "--wrap-mode=nodownload",
             "-Dtests=false", "-Dcontrol_socket=run/ovl.sock"], timeout=120)
    assert r.returncode != 0 and "absolute" in r.stdout + r.stderr, r.stdout + r.stderr


def with_tmp(test):
    def wrapped(net):
        tmp = tempfile.mkdtemp(prefix="ovl-inst-", dir=net.dir)
        try:
            test(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    wrapped.__name__ = test.__name__
    return wrapped


if __name__ == "__main__":
    ovltest.run_tests("test_install", [with_tmp(test_destdir), with_tmp(test_prefixes)])
