"""Dead relays are reported to the bootstrap, which checks before it drops.

A relay that hangs (SIGSTOP: its sockets stay open) is found by the hop
before it within that hop's heartbeat window; the hop tells the sender
(BROKEN), the sender repairs its chain and reports the relay to the
bootstrap (DIR_REPORT). The bootstrap believes the relay, not the report:
it probes the relay over its own link, and only a probe that goes
unanswered drops it. Here the bootstrap's own heartbeats would take 20 s
to notice, so a drop within a few seconds is the report's doing.
"""

import os
import signal
import time

import ovltest
from ovltest import wait_for

BOOT_HEARTBEAT_MS, BOOT_MISSES = 2000, 10  # the bootstrap alone: dead after 20 s
FAST = [("heartbeat", 200), ("heartbeat_misses", 3)]  # relays and clients: 0.6 s


def test_report_drops_hung_relay(net):
    extra = [("bootstrap", "link", "heartbeat", BOOT_HEARTBEAT_MS),
             ("bootstrap", "link", "heartbeat_misses", BOOT_MISSES)]
    extra += [(role, "link", k, v) for role in ("relay", "client") for k, v in FAST]
    tn = ovltest.testnet(net, relays=5, clients=2, ttl=60000, chain_length=3, extra=extra)
    a, b, boot = tn["clientA"], tn["clientB"], tn["boot"]
    chain = wait_for(lambda: ([c for c in tn.ctl(a.name, "chains") if c["state"] == "ready"]
                              or [None])[-1], 10.0, "clientA to have a ready chain")
    victim = tn[tn.name_of(chain["hops"][1])]
    listed = lambda: {r["id"] for r in tn.ctl("boot", "relays")}  # noqa: E731
    assert victim.id in listed()
    before = boot.status()
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for(lambda: victim.id not in listed(), 10.0,
                 "the bootstrap to drop the hung %s" % victim.name)
        took = time.monotonic() - t0
        st = boot.status()
        print("  %s dropped %.2f s after SIGSTOP (the bootstrap's heartbeats: %d s)" % (
            victim.name, took, BOOT_HEARTBEAT_MS * BOOT_MISSES // 1000))
        # The report's probe, not the bootstrap's own heartbeats, found it:
        # a failed probe is counted only when the probe ends the link.
        assert st["dir_reports_in"] > before["dir_reports_in"], st
        assert st["probes_failed"] > before["probes_failed"], st
        assert st["closed_dead"] > before["closed_dead"], st
        assert a.status()["dir_reports_sent"] >= 1
        out = tn.ctl(a.name, "send", "--wait", "--to", b.id, "after the report")
        assert out.get("result") == "delivered", out
    finally:
        os.kill(victim.pid, signal.SIGCONT)


if __name__ == "__main__":
    ovltest.run_tests("test_report", [test_report_drops_hung_relay])
