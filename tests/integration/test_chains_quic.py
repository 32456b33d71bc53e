"""test_chains over QUIC alone: every node listens and dials quic:// only.

The same tests as test_chains.py (messages both ways, counters balance,
relays learn only neighbours, a killed relay leaves the directory) on a
network built with tools/ovl-testnet --transport quic, plus a check that
every link is QUIC. ovl-probe speaks TCP only, so the tamper test stays in
test_chains.py. Skipped (exit 77) when ovld was built without QUIC.
"""

import test_chains as tc

if __name__ == "__main__":
    tc.run("test_chains_quic", [tc.test_messages_both_ways, tc.test_each_cell_peeled_by_l_relays,
                                tc.test_relays_learn_only_neighbours, tc.test_links_transport,
                                tc.test_dead_relay_leaves_directory],
           TRANSPORT="quic", N_MSG=100)
