"""Constant-rate mode on a real network (suite "anonymity").

clientA sends bursts of one-cell messages at random times; we count, in
bins of BIN_S, the messages it sent and the cells its chain's first relay
forwarded in the same bin, and compute Pearson's correlation between the
two series. With [client] constant_rate the relay forwards the same number
of cells in every bin whatever clientA does (real cells take the place of
cover), so |rho| < 0.1; with no cover the relay's output follows clientA's
sends and rho is high: the test shows that the feature is what hides them.
Every message must still arrive, acknowledged: real cells wait, never drop.

The send schedule is the workload (a paced generator), not a wait for an
event; events are awaited by polling with deadlines. OVL_TEST_SEED=N
repeats a run.
"""

import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ovltest  # noqa: E402
from ovltest import wait_for  # noqa: E402

RATE = 50       # cells/s of constant_rate
BIN_S = 0.03    # 1.5 slots a bin
BINS = 1000     # 30 s a run: for uncorrelated series rho has sd 1/sqrt(BINS) = 0.032,
                # so |rho| < 0.1 holds at 3 sd (a chance failure about 1 run in 600;
                # a second, independent run then decides: 1 in 360,000)
P_BURST = 0.3   # chance that a bin starts with a burst
BURST_MAX = 2   # messages in a burst: 1..2, each one cell (about 15 a second)
RHO_COVERED, RHO_BARE = 0.1, 0.5
SEED = int(os.environ.get("OVL_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
TN = ovltest.load_testnet()  # its control() and status_of() talk to sockets directly
_bare = {}


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return 0.0  # a constant series is uncorrelated with anything
    return sxy / math.sqrt(sxx * syy)


def run(net, rng, rate):
    extra = [("clientA", "client", "constant_rate", str(rate))] if rate else []
    tn = ovltest.testnet(net, relays=4, clients=2, heartbeat=1000, ttl=5000, chain_length=3,
                         extra=extra)
    a, b = tn["clientA"], tn["clientB"]
    chain = wait_for(lambda: ([c for c in tn.ctl(a.name, "chains") if c["state"] == "ready"]
                              or [None])[-1], 10.0, "clientA to have a ready chain")
    first = tn[tn.name_of(chain["hops"][0])]
    a_sock, r_sock = a.control_socket, first.control_socket
    fwd = lambda: TN.status_of(r_sock)["relay_cells_forwarded"]  # noqa: E731
    sent, out, n_msgs = [], [], 0
    prev = fwd()
    t_next = time.monotonic()
    for _ in range(BINS):
        k = rng.randint(1, BURST_MAX) if rng.random() < P_BURST else 0
        for _ in range(k):
            TN.control(a_sock, "send", [("to", b.id), ("text", "m%d" % n_msgs)])
            n_msgs += 1
        t_next += BIN_S
        time.sleep(max(0.0, t_next - time.monotonic()))
        now = fwd()
        sent.append(k)
        out.append(now - prev)
        prev = now
    wait_for(lambda: b.status()["client_messages_received"] >= n_msgs, 30.0,
             "clientB to receive all %d messages" % n_msgs)
    st = a.status()
    wait_for(lambda: a.status()["client_acks_in"] >= n_msgs, 30.0, "every acknowledgement")
    assert b.status()["client_messages_received"] == n_msgs
    rho = pearson(sent, out)
    print("constant_rate=%d: %d messages, relay cells per bin %d..%d (mean %.1f), "
          "cover %d permille, rho = %.3f" % (rate, n_msgs, min(out), max(out),
                                             sum(out) / len(out),
                                             st["client_cover_permille"], rho))
    return rho, out, st


def test_without_cover_send_times_show(net):
    print("OVL_TEST_SEED=%d" % SEED)
    rho, _, _ = run(net, random.Random(SEED), 0)
    _bare["rho"] = rho
    assert rho > RHO_BARE, "without cover rho = %.3f: the test cannot tell" % rho


def test_constant_rate_hides_send_times(net):
    """The same schedule (same seed) as the bare run, with constant_rate."""
    assert "rho" in _bare, "the run without cover must come first"
    rho, out, st = run(net, random.Random(SEED), RATE)
    if abs(rho) >= RHO_COVERED:
        # 3 sd: a fair run lands here 1 time in 600. A broken one (rho near
        # the bare run's 1.0) fails the second run as surely as the first.
        print("constant rate: rho = %.3f; an independent second run decides" % rho)
        again = ovltest.Net("rate_net_again")
        try:
            rho, out, st = run(again, random.Random(SEED + 1), RATE)
        finally:
            problems = again.close(abs(rho) >= RHO_COVERED)
        assert not problems, problems
    assert abs(rho) < RHO_COVERED, "constant rate: rho = %.3f" % rho
    # The rate held: about RATE x BIN_S cells a bin, none dropped or missed
    # for want of a chain once it was ready.
    mean = sum(out) / len(out)
    assert abs(mean - RATE * BIN_S) <= 0.1 * RATE * BIN_S, mean
    assert st["client_cover_out"] > 0 and st["client_cover_permille"] > 0, st


if __name__ == "__main__":
    ovltest.run_tests("test_rate_net", [test_without_cover_send_times_show,
                                        test_constant_rate_hides_send_times])
