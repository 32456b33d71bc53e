"""Exits on a testnet (tools/ovl-testnet --exit): every relay publishes the
policy (flag exit in `ovlctl relays`), takes the [exit] stream keys, and
shows the stream counters in `ovlctl status` at zero. Streams end to end
(a client's SOCKS front end through a chain to a target) come with the
client side; the exit's behaviour is unit-tested in tests/unit/test_xstream.c.
"""

import ovltest

POLICY = "accept 127.0.0.1:*, reject *:*"
COUNTERS = ("relay_streams_active", "relay_streams_opened", "relay_streams_refused_policy",
            "relay_streams_refused_limit", "relay_streams_unknown",
            "relay_streams_failed_connect", "relay_stream_bytes_in", "relay_stream_bytes_out")


def test_exits_listed_with_counters(net):
    extra = [("relay", "exit", "max_streams", "16"),
             ("relay", "exit", "max_streams_per_chain", "4"),
             ("relay", "exit", "stream_idle_timeout", "60000")]
    tn = ovltest.testnet(net, relays=2, clients=1, exit_policy=POLICY, extra=extra)
    assert tn.settings["exit_policy"] == POLICY
    listed = {r["id"]: r for r in tn.ctl("boot", "relays")}
    for r in tn.relays():
        assert "exit" in listed[r.id]["flags"], listed[r.id]
        assert "127.0.0.1" in listed[r.id]["policy"], listed[r.id]
        st = r.status()
        for key in COUNTERS:
            assert st[key] == 0, (r.name, key, st.get(key))
    assert "relay_streams_active" not in tn["clientA"].status()


if __name__ == "__main__":
    ovltest.run_tests("test_exit", [test_exits_listed_with_counters])
