"""test_chains over a mixed network whose chains alternate TCP and QUIC.

tools/ovl-testnet --transport mixed: clients speak TCP only, relays listen
on both and prefer QUIC, so a link's transport depends only on its ends
(client-relay TCP, relay-relay QUIC) whoever dialed it. With two relays and
2-hop chains every message path runs TCP, QUIC, TCP; test_links_transport
checks exactly that from the nodes' own link tables, after messages both
ways have gone through. Skipped (exit 77) when ovld was built without QUIC.
"""

import test_chains as tc

if __name__ == "__main__":
    tc.run("test_chains_mixed", [tc.test_messages_both_ways, tc.test_each_cell_peeled_by_l_relays,
                                 tc.test_relays_learn_only_neighbours, tc.test_links_transport,
                                 tc.test_relay_drops_tampered_cell],
           TRANSPORT="mixed", L=2, RELAYS=2, N_MSG=100)
