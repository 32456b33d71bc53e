"""Churn with hidden clients: as test_churn.py, every client hidden.

clientB listens nowhere: clientA's exits reach it through its
introduction relays, which the churn kills like any relay (a round hits
one of them about one time in three). clientB then draws another relay,
establishes a cookie there and republishes its inbound descriptor; exits
that lose an introduction tell clientA (DELIVER_FAIL gone), look clientB
up again, and what was lost goes again: every message still arrives
exactly once. Four rounds, about 40 s.
"""

import test_churn

if __name__ == "__main__":
    test_churn.run("test_churn_hidden", HIDDEN=True, ROUNDS=4)
