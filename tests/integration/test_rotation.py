"""Routes that really rotate: 200 successive `ovlctl new-chain` on clientA
(each waited for until ready) on a testnet of 6 relays, chains of 3.

Hop 0 is always clientA's guard (docs/PROTOCOL.md 19.14); the two hops
after it are drawn anew each time by the selection law (19.1: uniform,
the subnet rule off on loopback, the guard left out). So:
- the unordered pairs of middle hops pass a chi-square test against the
  uniform law over the C(5, 2) pairs of the five other relays;
- consecutive routes (the ordered middle hops) are equal no more often
  than chance: a binomial tail at p = 1/20 a step bounds the count.

The bootstrap draws a new set of [chain] choices offers at every request
([dir] chain_refresh = 0); an offer that is the route in use is never
taken, and when none is left the hops are picked locally, so rotation
holds whatever the bootstrap answers.
"""

import itertools
import math

import ovltest
from ovltest import wait_for

RELAYS = 6
ROUNDS = 200
ALPHA = 0.001  # false alarm rate of each statistical check


def fixture(net):
    # No backups: an offer then names two relays, and most leave the guard
    # out, so the bootstrap's offers are used as well as local picks.
    return ovltest.testnet(net, relays=RELAYS, clients=1, heartbeat=1000, ttl=5000,
                           chain_length=3, chain_backups=0,
                           extra=[("client", "client", "guards", 3),
                                  ("bootstrap", "dir", "chain_refresh", 0),
                                  # 200 new chains in a row ask faster than a
                                  # link may: a busy answer would send the
                                  # client to its relay list instead
                                  ("bootstrap", "dir", "request_rate", 1000),
                                  ("bootstrap", "dir", "request_burst", 2000)])


def chi2_sf(x, k):
    """P(X >= x) for chi-square with k degrees of freedom (k even or odd),
    by the series of the regularised upper incomplete gamma function."""
    a, z = k / 2.0, x / 2.0
    # lower regularised gamma by its series, then 1 - P
    term = total = 1.0 / a
    n = 1
    while term > total * 1e-15 and n < 10000:
        term *= z / (a + n)
        total += term
        n += 1
    lower = math.exp(-z + a * math.log(z) - math.lgamma(a)) * total
    return max(0.0, 1.0 - lower)


def binom_sf(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def new_chain(tn, last):
    wait_for(lambda: tn.ctl_run("clientA", "new-chain").returncode == 0, 20.0,
             "clientA to take new-chain")
    return wait_for(lambda: next((c for c in tn.ctl("clientA", "chains")
                                  if c["state"] == "ready" and c["chain"] > last), None),
                    30.0, "clientA's new chain")


def test_rotation(tn):
    st = wait_for(lambda: (lambda s: s if s.get("guard") else None)(tn["clientA"].status()),
                  30.0, "clientA's guard")
    guard = st["guard"]
    others = sorted(r.id for r in tn.relays() if r.id != guard)
    assert len(others) == RELAYS - 1
    wait_for(lambda: [c for c in tn.ctl("clientA", "chains") if c["state"] == "ready"] or None,
             30.0, "clientA's first chain")
    # Local picks come from the relay list clientA holds: every relay in it.
    # (one fetched before every relay registered is fetched again 30 s on)
    wait_for(lambda: tn["clientA"].status()["dir_list_relays"] == RELAYS, 60.0,
             "clientA to list every relay")
    last = max(c["chain"] for c in tn.ctl("clientA", "chains"))
    routes = []
    for _ in range(ROUNDS):
        c = new_chain(tn, last)
        last = c["chain"]
        hops = c["hops"]
        assert len(hops) == 3 and hops[0] == guard, (hops, guard)
        assert len(set(hops)) == 3, hops
        routes.append(tuple(hops[1:]))

    pairs = list(itertools.combinations(others, 2))
    counts = {p: 0 for p in pairs}
    for r in routes:
        counts[tuple(sorted(r))] += 1
    expect = ROUNDS / len(pairs)
    chi2 = sum((n - expect) ** 2 / expect for n in counts.values())
    p_value = chi2_sf(chi2, len(pairs) - 1)
    same = sum(1 for x, y in zip(routes, routes[1:]) if x == y)
    p_same = 1.0 / ((RELAYS - 1) * (RELAYS - 2))
    tail = binom_sf(same, ROUNDS - 1, p_same)
    st = tn["clientA"].status()
    print("pairs %s" % sorted(counts.values()))
    print("chi2 = %.2f over %d pairs (p = %.3f); %d consecutive routes equal (expected %.1f, "
          "P(>=) = %.3f); routes chosen %d, picked locally %d" % (
              chi2, len(pairs), p_value, same, (ROUNDS - 1) * p_same, tail,
              st["client_routes_chosen"], st["client_routes_local"]))
    assert p_value > ALPHA, "middle hops are not drawn uniformly: chi2 %.2f, p %.5f" % (
        chi2, p_value)
    assert tail > ALPHA, "%d consecutive routes equal: more than chance (P %.5f)" % (same, tail)
    assert st["client_routes_chosen"] > ROUNDS // 2, "the bootstrap's offers were seldom used"


if __name__ == "__main__":
    ovltest.run_tests("test_rotation", [test_rotation], fixture=fixture)
