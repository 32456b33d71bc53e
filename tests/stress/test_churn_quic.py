"""Churn over QUIC: as test_churn.py, every node on QUIC alone.

A killed relay's QUIC connections do not reset (UDP says nothing), so its
neighbours and the bootstrap find it by link heartbeats, within 3 s; the
messages still arrive exactly once. Three rounds, about 30 s. Skipped (exit
77) when ovld was built without QUIC.
"""

import test_churn

if __name__ == "__main__":
    test_churn.run("test_churn_quic", TRANSPORT="quic", ROUNDS=3)
