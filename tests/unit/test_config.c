/* test_config.c - unit tests for the INI configuration (src/app/config.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovl_config.h"

#include "app/config.h"
#include "core/transport.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "check_main.h"

#define NAME "t.conf"

/* A valid node ID (of the public key 0x01 0x02 .. 0x20) and its key. */
static char test_id[OVL_NODE_ID_LEN + 1];
static uint8_t test_pk[OVL_ED25519_PK];

static void make_id(void)
{
    for (size_t i = 0; i < sizeof(test_pk); i++)
        test_pk[i] = (uint8_t)(i + 1);
    node_id_format(test_id, test_pk);
}

/* Parse text after replacing every "@ID@" with test_id. */
static int parse(struct ovl_config *c, const char *text, char *err, size_t errlen)
{
    char buf[16384];
    size_t o = 0;
    for (const char *s = text; *s;) {
        if (strncmp(s, "@ID@", 4) == 0) {
            ck_assert_uint_lt(o + OVL_NODE_ID_LEN, sizeof(buf));
            memcpy(buf + o, test_id, OVL_NODE_ID_LEN);
            o += OVL_NODE_ID_LEN;
            s += 4;
        } else {
            ck_assert_uint_lt(o + 1, sizeof(buf));
            buf[o++] = *s++;
        }
    }
    buf[o] = '\0';
    return config_parse_string(c, NAME, buf, err, errlen);
}

static const char full_conf[] = "; every key, each set away from its default\n"
                                "[node]\n"
                                "roles = bootstrap, client\n"
                                "data_dir = /tmp/ovl-data\n"
                                "listen = tcp://127.0.0.1:7001\n"
                                "listen = tcp://[::1]:0\n"
                                "control_socket = /tmp/ovl.sock\n"
                                "aead = chacha20poly1305\n"
                                "cover_budget = 40\n"
                                "\n"
                                "[log]\n"
                                "level = debug\n"
                                "syslog = yes\n"
                                "\n"
                                "[link]\n"
                                "handshake_timeout = 2500\n"
                                "idle_timeout = 30000\n"
                                "max_links = 99\n"
                                "max_links_per_block = 7\n"
                                "handshake_rate = 0\n"
                                "handshake_burst = 3\n"
                                "send_queue = 65536\n"
                                "rekey_cells = 4294967296\n"
                                "reconnect_min = 200\n"
                                "reconnect_max = 9000\n"
                                "padding_min = 100\n"
                                "padding_max = 300\n"
                                "\n"
                                "[peer.relay-1]\n"
                                "address = tcp://10.0.0.1:7001\n"
                                "id = @ID@\n"
                                "[peer.dns_name]\n"
                                "address = tcp://relay.example.org:443\n"
                                "id = @ID@\n";

START_TEST(test_full)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX] = "x";

    ck_assert_int_eq(parse(&c, full_conf, err, sizeof(err)), 0);
    ck_assert(c.flags & CFG_F_DATA_DIR);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(c.path, NAME);
    ck_assert_uint_eq(c.roles, ROLE_BOOTSTRAP | ROLE_CLIENT);
    ck_assert_str_eq(c.data_dir, "/tmp/ovl-data");
    ck_assert_uint_eq(c.n_listen, 2);
    ck_assert_str_eq(c.listen[0], "tcp://127.0.0.1:7001");
    ck_assert_str_eq(c.listen[1], "tcp://[::1]:0");
    ck_assert_str_eq(c.control_socket, "/tmp/ovl.sock");
    ck_assert_uint_eq(c.opts.aead_suites, OVL_AEAD_CHACHA20POLY1305);
    ck_assert_int_eq(c.log_level, OVL_LOG_DEBUG);
    ck_assert(c.syslog);
    ck_assert_uint_eq(c.opts.handshake_timeout_ms, 2500);
    ck_assert_uint_eq(c.opts.idle_timeout_ms, 30000);
    ck_assert_uint_eq(c.opts.max_links, 99);
    ck_assert_uint_eq(c.opts.max_links_per_block, 7);
    ck_assert_uint_eq(c.opts.hs_rate_per_block, 0);
    ck_assert_uint_eq(c.opts.hs_burst_per_block, 3);
    ck_assert_uint_eq(c.opts.sendq_max, 65536);
    ck_assert_uint_eq(c.opts.rekey_cells, UINT64_C(4294967296));
    ck_assert_uint_eq(c.opts.reconnect_min_ms, 200);
    ck_assert_uint_eq(c.opts.reconnect_max_ms, 9000);
    ck_assert_uint_eq(c.opts.padding_min_ms, 100);
    ck_assert_uint_eq(c.opts.padding_max_ms, 300);
    ck_assert_uint_eq(c.opts.cover_budget, 40);
    ck_assert_uint_eq(c.n_peers, 2);
    ck_assert_str_eq(c.peers[0].name, "relay-1");
    ck_assert_str_eq(c.peers[0].uri, "tcp://10.0.0.1:7001");
    ck_assert_mem_eq(c.peers[0].pk, test_pk, sizeof(test_pk));
    ck_assert_str_eq(c.peers[1].name, "dns_name");
    ck_assert_str_eq(c.peers[1].uri, "tcp://relay.example.org:443");
}
END_TEST

static void assert_defaults(const struct ovl_config *c)
{
    ck_assert_uint_eq(c->roles, ROLE_RELAY);
    ck_assert_str_eq(c->data_dir, OVL_DEFAULT_DATA_DIR);
    ck_assert_str_eq(c->control_socket, OVL_DEFAULT_SOCKET);
    ck_assert(!(c->flags & CFG_F_DATA_DIR));
    /* Never taken from the working directory (meson.build makes them absolute). */
    ck_assert_int_eq(OVL_DEFAULT_CONFIG[0], '/');
    ck_assert_int_eq(OVL_DEFAULT_DATA_DIR[0], '/');
    ck_assert_int_eq(OVL_DEFAULT_SOCKET[0], '/');
    ck_assert_uint_eq(c->n_listen, 0);
    ck_assert_uint_eq(c->n_peers, 0);
    ck_assert_int_eq(c->log_level, OVL_LOG_INFO);
    ck_assert(!c->syslog);
    ck_assert_uint_eq(c->opts.aead_suites, ovl_aead_available());
    ck_assert_uint_eq(c->opts.handshake_timeout_ms, 5000);
    ck_assert_uint_eq(c->opts.idle_timeout_ms, 0);
    ck_assert_uint_eq(c->opts.max_links, 1024);
    ck_assert_uint_eq(c->opts.max_queued, 64u << 20);
    ck_assert_uint_eq(c->opts.max_links_per_block, 64);
    ck_assert_uint_eq(c->opts.hs_rate_per_block, 50);
    ck_assert_uint_eq(c->opts.hs_burst_per_block, 200);
    ck_assert_uint_eq(c->opts.sendq_max, 1048576);
    ck_assert_uint_eq(c->opts.rekey_cells, 1048576);
    ck_assert_uint_eq(c->opts.reconnect_min_ms, 1000);
    ck_assert_uint_eq(c->opts.reconnect_max_ms, 60000);
    ck_assert_uint_eq(c->opts.padding_min_ms, 1500);
    ck_assert_uint_eq(c->opts.padding_max_ms, 9500);
    ck_assert_uint_eq(c->opts.cover_budget, 100);
    ck_assert_uint_eq(c->n_bootstraps, 0);
    ck_assert_uint_eq(c->dir.heartbeat_ms, 5000);
    ck_assert_uint_eq(c->dir.ttl_ms, 15000);
    ck_assert_uint_eq(c->dir.chain_cache_ttl_ms, 600000);
    ck_assert_uint_eq(c->dir.max_nodes, 4096);
    ck_assert_uint_eq(c->dir.max_chains, 1024);
    ck_assert_uint_eq(c->dir.onion_rotate_ms, 3600000);
    ck_assert_uint_eq(c->dir.onion_overlap_ms, 600000);
    ck_assert_uint_eq(c->dir.request_timeout_ms, 5000);
    ck_assert_uint_eq(c->dir.desc_lifetime_ms, 3 * 3600000u);
    ck_assert_uint_eq(c->dir.request_rate, 20);
    ck_assert_uint_eq(c->dir.request_burst, 40);
    ck_assert(!c->dir.allow_private);
    ck_assert_int_eq(c->client.source, CHAIN_SOURCE_BOOTSTRAP);
    ck_assert(!c->client.by_capacity && !c->dir.by_capacity);
    ck_assert_uint_eq(c->dir.capacity_kib, 0);
    ck_assert_uint_eq(c->relay_loop_ms, 0);
    ck_assert_uint_eq(c->client.flags, 0);
    ck_assert_uint_eq(c->client.length, 3);
    ck_assert_uint_eq(c->client.backups, 2);
    ck_assert_uint_eq(c->client.lifetime_ms, 600000);
    ck_assert_uint_eq(c->client.setup_timeout_ms, 10000);
    ck_assert_uint_eq(c->client.max_message, 1048576);
    ck_assert_uint_eq(c->client.inbox_messages, 1024);
    ck_assert_uint_eq(c->client.inbox_bytes, 67108864);
    ck_assert_uint_eq(c->client.send_queue, 1024);
    ck_assert_uint_eq(c->client.reassembly_timeout_ms, 60000);
    ck_assert_uint_eq(c->client.replay_window_ms, 600000);
    ck_assert_uint_eq(c->client.tombstones, 65536);
    ck_assert_uint_eq(c->relay.max_chains, 65536);
    ck_assert_uint_eq(c->relay.setup_timeout_ms, 10000);
    ck_assert_uint_eq(c->relay.max_lifetime_s, 3600);
    ck_assert_uint_eq(c->relay.exit_queue, 256);
    ck_assert_uint_eq(c->relay.max_chains_per_link, 0); /* derived from max_chains */
    ck_assert_uint_eq(c->relay.max_chains_per_block, 0);
    ck_assert_uint_eq(c->relay.stall_timeout_ms, 5000);
    ck_assert_uint_eq(c->dir.exit_policy.n, 0); /* not an exit */
}

/* Texts without any setting: each must give exactly the defaults. */
static const char *const empty_confs[] = {
    "",
    "\n\n",
    "; only a comment\n# and another\n",
    "[node]\n[log]\n[link]\n",
    "[dir]\n[chain]\n[client]\n[relay]\n[exit]\n",
    "\xEF\xBB\xBF[node]\r\n\r\n",
};

START_TEST(test_defaults)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];

    memset(&c, 0xa5, sizeof(c));
    config_defaults(&c);
    assert_defaults(&c);
    ck_assert_int_eq(parse(&c, empty_confs[_i], err, sizeof(err)), 0);
    assert_defaults(&c);
}
END_TEST

/* Accepted spellings that are easy to get wrong. */
static const struct {
    const char *text;
    unsigned roles;
    bool syslog;
    uint32_t idle;
} good_cases[] = {
    {"[node]\nroles = relay,relay\n", ROLE_RELAY, false, 0},
    {"[node]\nroles=client,bootstrap,relay\n", ROLE_CLIENT | ROLE_BOOTSTRAP | ROLE_RELAY, false, 0},
    {"  [node]  ; indented header\n    roles = client ; inline comment\n", ROLE_CLIENT, false, 0},
    {"[log]\nsyslog = true\n", ROLE_RELAY, true, 0},
    {"[log]\nsyslog = 1\n", ROLE_RELAY, true, 0},
    {"[log]\nsyslog = no\n", ROLE_RELAY, false, 0},
    {"[link]\nidle_timeout = 0\n", ROLE_RELAY, false, 0},
    {"[link]\nidle_timeout = 1000\n", ROLE_RELAY, false, 1000},
    {"[link]\nidle_timeout = 86400000\r\n", ROLE_RELAY, false, 86400000},
    {"[node]\nroles = relay\n[log]\nlevel = warn\n[node]\nlisten = tcp://0.0.0.0:1\n", ROLE_RELAY,
     false, 0},
};

START_TEST(test_good)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];

    ck_assert_msg(parse(&c, good_cases[_i].text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.roles, good_cases[_i].roles);
    ck_assert_int_eq(c.syslog, good_cases[_i].syslog);
    ck_assert_uint_eq(c.opts.idle_timeout_ms, good_cases[_i].idle);
}
END_TEST

/* Integer keys at and just past both ends of their ranges. */
static const struct {
    const char *key;
    const char *value;
    bool ok;
} range_cases[] = {
    {"handshake_timeout", "100", true},
    {"handshake_timeout", "99", false},
    {"handshake_timeout", "600000", true},
    {"handshake_timeout", "600001", false},
    {"idle_timeout", "999", false},
    {"idle_timeout", "86400001", false},
    {"max_links", "1", true},
    {"max_links", "0", false},
    {"max_links", "65536", true},
    {"max_links", "65537", false},
    {"send_queue", "16384", true},
    {"send_queue", "16383", false},
    {"send_queue", "67108864", true},
    {"send_queue", "67108865", false},
    {"rekey_cells", "16", true},
    {"rekey_cells", "15", false},
    {"rekey_cells", "1000", false},
    {"rekey_cells", "1024", true},
    {"rekey_cells", "4294967297", false},
    {"rekey_cells", "18446744073709551616", false},
    {"reconnect_min", "100", true},
    {"reconnect_min", "99", false},
    {"reconnect_max", "3600000", true},
    {"reconnect_max", "3600001", false},
    {"reconnect_max", "999", false},
    {"max_links", "0042", true},
    {"max_links_per_block", "0", true},
    {"max_links_per_block", "65537", false},
    {"handshake_rate", "0", true},
    {"handshake_rate", "1000001", false},
    {"handshake_burst", "0", false},
    {"handshake_burst", "1", true},
    {"heartbeat", "0", true},
    {"heartbeat", "99", false},
    {"heartbeat", "100", true},
    {"heartbeat", "600001", false},
    {"heartbeat_misses", "0", false},
    {"heartbeat_misses", "1", true},
    {"heartbeat_misses", "1001", false},
    {"padding_min", "9", false},
    {"padding_min", "10", true},
    {"padding_min", "9500", true},
    {"padding_min", "9501", false}, /* above the default padding_max */
    {"padding_max", "0", true},     /* no link padding */
    {"padding_max", "1500", true},
    {"padding_max", "1499", false}, /* below the default padding_min */
    {"padding_max", "3600001", false},
};

START_TEST(test_ranges)
{
    struct ovl_config c;
    char text[256], err[CONFIG_ERR_MAX];

    snprintf(text, sizeof(text), "[link]\n%s = %s\n", range_cases[_i].key, range_cases[_i].value);
    int rc = parse(&c, text, err, sizeof(err));
    if (range_cases[_i].ok) {
        ck_assert_msg(rc == 0, "%s = %s: %s", range_cases[_i].key, range_cases[_i].value, err);
    } else {
        ck_assert_int_eq(rc, OVL_EINVAL);
        ck_assert_msg(strncmp(err, NAME ":2: ", strlen(NAME ":2: ")) == 0, "%s", err);
    }
}
END_TEST

/* Rejected configs: the error must name the file and the right line. */
struct bad_case {
    const char *what;
    const char *text;
    unsigned line;
    const char *needle; /* expected somewhere in the message */
};

static const struct bad_case bad_cases[] = {
    {"bad integer", "[link]\nmax_links = ten\n", 2, "bad number 'ten'"},
    {"empty integer", "[link]\n\nmax_links =\n", 3, "bad number"},
    {"out of range", "[link]\nhandshake_timeout = 50\n", 2, "out of range (100..600000)"},
    {"trailing junk", "[link]\nmax_links = 10k\n", 2, "bad number '10k'"},
    {"inner blank", "[link]\nmax_links = 1 0\n", 2, "bad number"},
    {"negative", "[link]\nmax_links = -1\n", 2, "bad number '-1'"},
    {"plus sign", "[link]\nmax_links = +1\n", 2, "bad number"},
    {"hex", "[link]\nmax_links = 0x10\n", 2, "bad number"},
    {"huge", "[link]\nrekey_cells = 99999999999999999999999\n", 2, "bad number"},
    {"idle gap", "[link]\nidle_timeout = 500\n", 2, "0 or 1000..86400000"},
    {"unknown key", "[node]\nroles = relay\ncolour = blue\n", 3, "unknown key 'colour' in [node]"},
    {"key of another section", "[log]\nmax_links = 5\n", 2, "unknown key 'max_links' in [log]"},
    {"unknown section", "[node]\n[nodes]\n", 2, "unknown section [nodes]"},
    {"empty section", "[]\n", 1, "unknown section []"},
    {"junk after header", "[node] x\n", 1, "unexpected text"},
    {"key before section", "roles = relay\n", 1, "outside any section"},
    {"duplicate key", "[log]\nlevel = info\n\nlevel = debug\n", 4, "duplicate key 'level'"},
    {"duplicate across sections", "[node]\naead = auto\n[log]\n[node]\naead = auto\n", 5,
     "duplicate key 'aead'"},
    {"bad bool", "[log]\nsyslog = maybe\n", 2, "bad boolean 'maybe'"},
    {"bool case", "[log]\nsyslog = TRUE\n", 2, "bad boolean"},
    {"bad level", "[log]\nlevel = loud\n", 2, "unknown log level 'loud'"},
    {"bad aead", "[node]\naead = rot13\n", 2, "unknown aead 'rot13'"},
    {"bad URI", "[node]\nlisten = 127.0.0.1\n", 2, "bad listen '127.0.0.1'"},
    {"scheme-less without port", "[node]\nlisten = [::1]\n", 2, "bad listen '[::1]'"},
    {"unknown in transports", "[node]\ntransports = tcp,sctp\n", 2, "unknown transport 'sctp'"},
    {"empty transports item", "[node]\ntransports = tcp,\n", 2, "unknown transport ''"},
    {"empty transports", "[node]\ntransports =\n", 2, "unknown transport ''"},
    {"prefer two", "[node]\nprefer = tcp,tcp\n", 2, "prefer names one transport"},
    {"prefer unknown", "[node]\nprefer = udp\n", 2, "unknown transport 'udp' in prefer"},
    {"URI with path", "[node]\nlisten = tcp://127.0.0.1:7001/x\n", 2, "bad listen"},
    {"unknown transport", "[node]\nlisten = sctp://127.0.0.1:1\n", 2, "unknown transport 'sctp'"},
    {"DNS name in listen", "[node]\nlisten = tcp://localhost:7001\n", 2, "IP literal"},
    {"too many listen",
     "[node]\n"
     "listen = tcp://127.0.0.1:1\nlisten = tcp://127.0.0.1:2\nlisten = tcp://127.0.0.1:3\n"
     "listen = tcp://127.0.0.1:4\nlisten = tcp://127.0.0.1:5\nlisten = tcp://127.0.0.1:6\n"
     "listen = tcp://127.0.0.1:7\nlisten = tcp://127.0.0.1:8\nlisten = tcp://127.0.0.1:9\n",
     10, "too many listen addresses (at most 8)"},
    {"unknown role", "[node]\nroles = relay, exit\n", 2, "unknown role 'exit'"},
    {"empty roles", "[node]\nroles =\n", 2, "roles is empty"},
    {"empty role item", "[node]\nroles = relay,,client\n", 2, "empty role name"},
    {"trailing comma", "[node]\nroles = relay,\n", 2, "empty role name"},
    {"overlong socket path",
     "[node]\ncontrol_socket = /tmp/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaa.sock\n",
     2, "control_socket is too long (118 bytes, at most 107)"},
    {"empty path", "[node]\ndata_dir =\n", 2, "data_dir is empty"},
    {"overlong line",
     "[node]\n\n\ndata_dir = /"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     4, "line too long"},
    {"reconnect_max < reconnect_min", "[link]\nreconnect_max = 2000\n\nreconnect_min = 3000\n", 4,
     "reconnect_max (2000) is below reconnect_min (3000)"},
    {"padding_max < padding_min", "[link]\npadding_max = 2000\npadding_min = 3000\n", 3,
     "padding_max (2000) is below padding_min (3000)"},
    {"reconnect_max < default min", "[link]\n\nreconnect_max = 1000\nreconnect_min = 1001\n", 4,
     "below reconnect_min"},
    {"deadline >= reassembly_timeout", "[client]\ndeadline = 60000\n", 2,
     "deadline (60000) must be below reassembly_timeout (60000)"},
    {"reassembly_timeout <= deadline", "[client]\nreassembly_timeout = 5000\n", 2,
     "must be below reassembly_timeout (5000)"},
    {"syntax error line", "[node]\nroles = relay\njust some words\n", 3, "syntax error"},
    {"unterminated section", "[log]\nlevel = info\n[node\n", 3, "syntax error"},
    {"syntax error before a bad key", "[node]\nnonsense\ncolour = blue\n", 2, "syntax error"},
    {"colon separator", "[log]\nlevel: info\n", 2, "syntax error"},
    {"bad key before a syntax error", "[node]\ncolour = blue\nnonsense\n", 2, "unknown key"},
    {"indented continuation", "[node]\nlisten = tcp://127.0.0.1:1\n    tcp://127.0.0.1:2\n", 3,
     "syntax error"},
    {"peer without id",
     "[peer.a]\naddress = tcp://127.0.0.1:1\n\n[peer.b]\naddress = "
     "tcp://127.0.0.1:2\nid = @ID@\n",
     1, "peer a has no id"},
    {"peer without address", "[node]\n[peer.b]\nid = @ID@\n", 2, "peer b has no address"},
    {"empty peer section", "[node]\nroles = relay\n\n[peer.c]\n", 4, "peer c has no address"},
    {"bad id", "[peer.a]\naddress = tcp://127.0.0.1:1\nid = abc\n", 3, "peer a: bad id 'abc'"},
    {"peer port 0", "[peer.a]\naddress = tcp://127.0.0.1:0\nid = @ID@\n", 2,
     "port from 1 to 65535"},
    {"peer bad address", "[peer.a]\naddress = tcp://127.0.0.1\nid = @ID@\n", 2, "bad address"},
    {"peer given twice", "[peer.a]\naddress = tcp://127.0.0.1:1\nid = @ID@\n[peer.a]\n", 4,
     "given twice (first on line 1)"},
    {"duplicate peer key", "[peer.a]\naddress = tcp://127.0.0.1:1\naddress = tcp://127.0.0.1:1\n",
     3, "duplicate key 'address' in [peer.a]"},
    {"bad peer name", "[peer.a.b]\n", 1, "bad peer name 'a.b'"},
    {"empty peer name", "[node]\n[peer.]\n", 2, "bad peer name ''"},
    {"long peer name", "[peer.abcdefghijklmnopqrstuvwxyz123456]\n", 1, "bad peer name"},
    {"unknown peer key", "[peer.a]\nport = 7\n", 2, "unknown key 'port' in [peer.a]"},
    {"bad policy rule", "[exit]\npolicy = accept *:443, reject 10.0.0.0/33:*\n", 2,
     "policy rule 2: bad prefix length"},
    {"bad policy verb", "[relay]\n[exit]\n\npolicy = allow *:80\n", 4,
     "policy rule 1: expected accept or reject"},
    {"bad policy port", "[exit]\npolicy = accept *:80\npolicy = reject *:*, accept *:0\n", 3,
     "policy rule 2: bad port"},
    {"bad policy address", "[exit]\npolicy = accept localhost:80\n", 2,
     "policy rule 1: bad address"},
    {"empty policy", "[exit]\npolicy =\n", 2, "policy has no rules"},
    {"blank policy", "[exit]\npolicy = , ,\n", 2, "policy has no rules"},
    {"policy on a client", "[node]\nroles = client\n[exit]\npolicy = accept *:*\n", 4,
     "[exit] policy needs the relay role"},
    {"policy before roles", "[exit]\npolicy = accept *:*\n[node]\nroles = bootstrap\n", 2,
     "needs the relay role"},
    {"unknown exit key", "[exit]\naccept = *:*\n", 2, "unknown key 'accept' in [exit]"},
    {"bad family id", "[relay]\nfamily = @ID@ abc\n", 2, "family: bad id 'abc' (expected 52"},
    {"family id cut", "[relay]\nfamily = @ID@x\n", 2, "family: bad id"},
    {"empty family", "[relay]\nfamily = ,\n", 2, "family is empty"},
    {"family twice", "[relay]\nfamily = @ID@\n\nfamily = @ID@\n", 4, "family names"},
    {"family on a client", "[node]\nroles = client\n[relay]\nfamily = @ID@\n", 4,
     "[relay] family needs the relay role"},
};

/* Cases whose outcome depends on whether QUIC is compiled in. */
static const struct bad_case quic_bad_cases[] = {
#if OVL_HAVE_QUIC
    {"prefer outside transports", "[node]\ntransports = tcp\nprefer = quic\n", 3,
     "prefer = quic is not among transports"},
    {"listen outside transports", "[node]\nlisten = quic://127.0.0.1:0\ntransports = tcp\n", 2,
     "listen 'quic://127.0.0.1:0' uses quic, which transports leaves out"},
    {"peer outside transports",
     "[node]\ntransports = quic\n[peer.a]\naddress = tcp://127.0.0.1:1\nid = @ID@\n", 3,
     "peer address 'tcp://127.0.0.1:1' uses tcp"},
    {"too many after expansion",
     "[node]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\nlisten = 127.0.0.1:3\n"
     "listen = 127.0.0.1:4\nlisten = 127.0.0.1:5\n",
     6, "too many listen addresses (at most 8)"},
#else
    {"quic not compiled", "[node]\ntransports = tcp,quic\n", 2,
     "quic is not compiled into this ovld (it has: tcp)"},
    {"quic listen not compiled", "[node]\nlisten = quic://127.0.0.1:1\n", 2,
     "unknown transport 'quic'"},
#endif
};

/* Parse bc's text and check the error names the right line and says needle. */
static void check_bad(const struct bad_case *bc)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX], prefix[32];

    snprintf(prefix, sizeof(prefix), NAME ":%u: ", bc->line);
    int rc = parse(&c, bc->text, err, sizeof(err));
    ck_assert_msg(rc == OVL_EINVAL, "%s: rc %d", bc->what, rc);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: want '%s...', got '%s'", bc->what,
                  prefix, err);
    ck_assert_msg(strstr(err, bc->needle) != NULL, "%s: want '%s' in '%s'", bc->what, bc->needle,
                  err);
}

START_TEST(test_bad)
{
    check_bad(&bad_cases[_i]);
}
END_TEST

START_TEST(test_quic_bad)
{
    check_bad(&quic_bad_cases[_i]);
}
END_TEST

/* What transports, prefer and scheme-less listen values settle to. */
static const struct {
    const char *text;
    bool need_quic;
    const char *transports, *prefer; /* as tp_bit() names */
    const char *listen[4];
} tp_cases[] = {
    {"[node]\nlisten = tcp://127.0.0.1:1\n", false, NULL, "tcp", {"tcp://127.0.0.1:1"}},
    {"[node]\ntransports = tcp\nlisten = 127.0.0.1:7\n",
     false,
     "tcp",
     "tcp",
     {"tcp://127.0.0.1:7"}},
    {"[node]\nlisten = [::1]:0\nlisten = quic://127.0.0.1:9\n",
     true,
     "tcp,quic",
     "tcp",
     {"tcp://[::1]:0", "quic://[::1]:0", "quic://127.0.0.1:9"}},
    {"[node]\ntransports = quic\nlisten = 0.0.0.0:5\n", true, "quic", "quic", {"quic://0.0.0.0:5"}},
    {"[node]\ntransports = quic,tcp\nprefer = quic\n", true, "tcp,quic", "quic", {NULL}},
};

static unsigned bits_of(const char *names)
{
    unsigned m = 0;

    if (!names)
        return tp_all_bits();
    m |= strstr(names, "tcp") ? tp_bit("tcp") : 0;
    m |= strstr(names, "quic") ? tp_bit("quic") : 0;
    return m;
}

START_TEST(test_transports)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];
    unsigned n = 0;

    if (tp_cases[_i].need_quic && !OVL_HAVE_QUIC)
        return;
    ck_assert_msg(parse(&c, tp_cases[_i].text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.opts.transports, bits_of(tp_cases[_i].transports));
    ck_assert_uint_eq(c.opts.prefer, bits_of(tp_cases[_i].prefer));
    for (; n < 4 && tp_cases[_i].listen[n]; n++)
        ck_assert_str_eq(c.listen[n], tp_cases[_i].listen[n]);
    ck_assert_uint_eq(c.n_listen, n);
}
END_TEST

START_TEST(test_peer_limit)
{
    static char text[NODE_MAX_PEERS * 160 + 256];
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];
    size_t o = 0;

    for (unsigned i = 0; i <= NODE_MAX_PEERS; i++) {
        int n = snprintf(text + o, sizeof(text) - o,
                         "[peer.p%u]\naddress = tcp://127.0.0.1:%u\nid = %s\n", i, i + 1, test_id);
        ck_assert(n > 0 && (size_t)n < sizeof(text) - o);
        o += (size_t)n;
        if (i == NODE_MAX_PEERS - 1) {
            ck_assert_msg(config_parse_string(&c, NAME, text, err, sizeof(err)) == 0, "%s", err);
            ck_assert_uint_eq(c.n_peers, NODE_MAX_PEERS);
            ck_assert_str_eq(c.peers[NODE_MAX_PEERS - 1].name, "p63");
        }
    }
    ck_assert_int_eq(config_parse_string(&c, NAME, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, NAME ":193: too many peers") == err, "%s", err);
}
END_TEST

START_TEST(test_aead)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];

    ck_assert_int_eq(parse(&c, "[node]\naead = auto\n", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.opts.aead_suites, ovl_aead_available());
    int rc = parse(&c, "[node]\naead = aes256gcm\n", err, sizeof(err));
    if (ovl_aead_available() & OVL_AEAD_AES256GCM) {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(c.opts.aead_suites, OVL_AEAD_AES256GCM);
    } else {
        ck_assert_int_eq(rc, OVL_EINVAL);
        ck_assert_str_eq(err, NAME ":2: aes256gcm is not available on this CPU");
    }
}
END_TEST

/* Write text to a fresh temporary file named in path (a mkstemp template). */
static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

START_TEST(test_load_file)
{
    char path[] = "/tmp/test_config_XXXXXX";
    char want[64], err[CONFIG_ERR_MAX];
    struct ovl_config c;

    write_temp(path, "[log]\nlevel = warn\n");
    int rc = config_load(&c, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(c.path, path);
    ck_assert_int_eq(c.log_level, OVL_LOG_WARN);
    unlink(path);

    char bad[] = "/tmp/test_config_XXXXXX";
    write_temp(bad, "[node]\nroles = client\n[link]\nmax_links = x\n");
    rc = config_load(&c, bad, err, sizeof(err));
    unlink(bad);
    ck_assert_int_eq(rc, OVL_EINVAL);
    snprintf(want, sizeof(want), "%s:4: ", bad);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
}
END_TEST

START_TEST(test_load_nul)
{
    char path[] = "/tmp/test_config_XXXXXX";
    char want[64], err[CONFIG_ERR_MAX];
    struct ovl_config c;
    static const char text[] = "[node]\nroles = re\0lay\n";

    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    ck_assert_int_eq(close(fd), 0);
    int rc = config_load(&c, path, err, sizeof(err));
    unlink(path);
    ck_assert_int_eq(rc, OVL_EINVAL);
    snprintf(want, sizeof(want), "%s:2: NUL byte", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
}
END_TEST

START_TEST(test_missing_file)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];

    int rc = config_load(&c, "/nonexistent/ovld.conf", err, sizeof(err));
    ck_assert_int_eq(rc, OVL_ENOENT);
    ck_assert_str_eq(err, "/nonexistent/ovld.conf: cannot open: No such file or directory");
}
END_TEST

static const struct {
    unsigned roles;
    const char *want;
} fmt_cases[] = {
    {0, "none"},
    {ROLE_RELAY, "relay"},
    {ROLE_CLIENT | ROLE_BOOTSTRAP, "bootstrap,client"},
    {ROLE_CLIENT | ROLE_RELAY | ROLE_BOOTSTRAP, "bootstrap,relay,client"},
};

START_TEST(test_roles_format)
{
    char out[64];

    node_roles_format(out, sizeof(out), fmt_cases[_i].roles);
    ck_assert_str_eq(out, fmt_cases[_i].want);
    node_roles_format(out, 4, ROLE_BOOTSTRAP);
    ck_assert_uint_lt(strlen(out), 4);
}
END_TEST

/* Every key of the role sections, each away from its default. */
static const char roles_conf[] = "[node]\n"
                                 "roles = relay, client\n"
                                 "rate = 10 MB\n"
                                 "burst = 20MiB\n"
                                 "[dir]\n"
                                 "heartbeat = 2000\n"
                                 "ttl = 7000\n"
                                 "chain_cache_ttl = 30000\n"
                                 "max_nodes = 100\n"
                                 "max_cached_chains = 50\n"
                                 "onion_rotate = 120000\n"
                                 "onion_overlap = 0\n"
                                 "request_timeout = 900\n"
                                 "request_rate = 1000\n"
                                 "request_burst = 1\n"
                                 "allow_private_addresses = yes\n"
                                 "[chain]\n"
                                 "source = local\n"
                                 "weighting = capacity\n"
                                 "length = 8\n"
                                 "backups = 0\n"
                                 "lifetime = 10000\n"
                                 "setup_timeout = 100\n"
                                 "[client]\n"
                                 "max_message = 67108864\n"
                                 "inbox_messages = 7\n"
                                 "inbox_bytes = 4294967296\n"
                                 "send_queue = 3\n"
                                 "reassembly_timeout = 5000\n"
                                 "retransmit = 150\n"
                                 "deadline = 1000\n"
                                 "replay_window = 10000\n"
                                 "tombstones = 10000000\n"
                                 "[relay]\n"
                                 "max_chains = 10000000\n"
                                 "setup_timeout = 600000\n"
                                 "max_lifetime = 10\n"
                                 "exit_queue = 65536\n"
                                 "max_chains_per_link = 100\n"
                                 "max_chains_per_block = 400\n"
                                 "stall_timeout = 600000\n"
                                 "capacity = 10000000\n"
                                 "rate = 1048576\n"
                                 "burst = 2 mib\n"
                                 "max_per_day = 100 GB\n"
                                 "max_per_month = 2TiB\n"
                                 "accounting_start = 15 04:30\n"
                                 "[bootstrap.b1]\n"
                                 "address = tcp://192.0.2.1:7001\n"
                                 "id = @ID@\n";

START_TEST(test_roles_full)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];

    ck_assert_msg(parse(&c, roles_conf, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.roles, ROLE_RELAY | ROLE_CLIENT);
    ck_assert_uint_eq(c.dir.heartbeat_ms, 2000);
    ck_assert_uint_eq(c.dir.ttl_ms, 7000);
    ck_assert_uint_eq(c.dir.chain_cache_ttl_ms, 30000);
    ck_assert_uint_eq(c.dir.max_nodes, 100);
    ck_assert_uint_eq(c.dir.max_chains, 50);
    ck_assert_uint_eq(c.dir.onion_rotate_ms, 120000);
    ck_assert_uint_eq(c.dir.onion_overlap_ms, 0);
    ck_assert_uint_eq(c.dir.request_timeout_ms, 900);
    ck_assert_uint_eq(c.dir.desc_lifetime_ms, 360000);
    ck_assert_uint_eq(c.dir.request_rate, 1000);
    ck_assert_uint_eq(c.dir.request_burst, 1);
    ck_assert(c.dir.allow_private);
    ck_assert_int_eq(c.client.source, CHAIN_SOURCE_LOCAL);
    ck_assert(c.client.by_capacity && c.dir.by_capacity); /* both generators */
    ck_assert_uint_eq(c.dir.capacity_kib, 10000000);
    ck_assert_uint_eq(c.client.length, 8);
    ck_assert_uint_eq(c.client.backups, 0);
    ck_assert_uint_eq(c.client.lifetime_ms, 10000);
    ck_assert_uint_eq(c.client.setup_timeout_ms, 100);
    ck_assert_uint_eq(c.client.max_message, 67108864);
    ck_assert_uint_eq(c.client.inbox_messages, 7);
    ck_assert_uint_eq(c.client.inbox_bytes, UINT64_C(4294967296));
    ck_assert_uint_eq(c.client.send_queue, 3);
    ck_assert_uint_eq(c.client.reassembly_timeout_ms, 5000);
    ck_assert_uint_eq(c.client.retransmit_ms, 150);
    ck_assert_uint_eq(c.client.deadline_ms, 1000);
    ck_assert_uint_eq(c.client.replay_window_ms, 10000);
    ck_assert_uint_eq(c.client.tombstones, 10000000);
    ck_assert_uint_eq(c.relay.max_chains, 10000000);
    ck_assert_uint_eq(c.relay.setup_timeout_ms, 600000);
    ck_assert_uint_eq(c.relay.max_lifetime_s, 10);
    ck_assert_uint_eq(c.relay.exit_queue, 65536);
    ck_assert_uint_eq(c.relay.max_chains_per_link, 100);
    ck_assert_uint_eq(c.relay.max_chains_per_block, 400);
    ck_assert_uint_eq(c.relay.stall_timeout_ms, 600000);
    ck_assert_uint_eq(c.opts.bw.rate[TPM_NODE], 10000000);
    ck_assert_uint_eq(c.opts.bw.burst[TPM_NODE], 20u << 20);
    ck_assert_uint_eq(c.opts.bw.rate[TPM_RELAY], 1048576);
    ck_assert_uint_eq(c.opts.bw.burst[TPM_RELAY], 2u << 20);
    ck_assert_uint_eq(c.opts.bw.acct.max[ACCT_DAY], 100000000000ull);
    ck_assert_uint_eq(c.opts.bw.acct.max[ACCT_MONTH], 2ull << 40);
    ck_assert_uint_eq(c.opts.bw.acct.start_mday, 15);
    ck_assert_uint_eq(c.opts.bw.acct.start_min, 4 * 60 + 30);
    ck_assert_uint_eq(c.n_bootstraps, 1);
    ck_assert_str_eq(c.bootstraps[0].name, "b1");
    ck_assert_str_eq(c.bootstraps[0].uri, "tcp://192.0.2.1:7001");
    ck_assert_mem_eq(c.bootstraps[0].pk, test_pk, sizeof(test_pk));
    ck_assert_uint_eq(c.n_peers, 0);
}
END_TEST

/* Keys of the role sections at and just past both ends of their ranges. */
static const struct {
    const char *sect, *key, *value;
    bool ok;
} role_range_cases[] = {
    {"node", "max_queued", "0", true},
    {"node", "max_queued", "1048575", false},
    {"node", "max_queued", "1048576", true},
    {"node", "max_queued", "1099511627777", false},
    {"dir", "heartbeat", "1000", true},
    {"dir", "heartbeat", "999", false},
    {"dir", "heartbeat", "600001", false},
    {"dir", "ttl", "86400000", true},
    {"dir", "ttl", "86400001", false},
    {"dir", "ttl", "999", false},
    {"dir", "chain_cache_ttl", "1000", true},
    {"dir", "chain_cache_ttl", "999", false},
    {"dir", "chain_cache_ttl", "86400000", true},
    {"dir", "chain_cache_ttl", "86400001", false},
    {"dir", "max_nodes", "1", true},
    {"dir", "max_nodes", "0", false},
    {"dir", "max_nodes", "1000000", true},
    {"dir", "max_nodes", "1000001", false},
    {"dir", "max_cached_chains", "1", true},
    {"dir", "max_cached_chains", "0", false},
    {"dir", "max_cached_chains", "1000000", true},
    {"dir", "max_cached_chains", "1000001", false},
    {"dir", "onion_rotate", "60000", true},
    {"dir", "onion_rotate", "59999", false},
    {"dir", "onion_rotate", "604800000", true},
    {"dir", "onion_rotate", "604800001", false},
    {"dir", "onion_overlap", "0", true},
    {"dir", "onion_overlap", "86400000", true},
    {"dir", "onion_overlap", "86400001", false},
    {"dir", "request_timeout", "100", true},
    {"dir", "request_timeout", "99", false},
    {"dir", "request_timeout", "600000", true},
    {"dir", "request_timeout", "600001", false},
    {"dir", "request_rate", "0", false}, /* rate 1000, burst 1: test_roles_full */
    {"dir", "request_rate", "1001", false},
    {"dir", "request_burst", "0", false},
    {"dir", "request_burst", "100000", true},
    {"dir", "request_burst", "100001", false},
    {"dir", "allow_private_addresses", "false", true},
    {"dir", "allow_private_addresses", "on", false},
    {"chain", "source", "bootstrap", true},
    {"chain", "source", "local", true},
    {"chain", "source", "Local", false},
    {"chain", "source", "", false},
    {"chain", "weighting", "uniform", true},
    {"chain", "weighting", "capacity", true},
    {"chain", "weighting", "Capacity", false},
    {"chain", "weighting", "bandwidth", false},
    {"chain", "weighting", "", false},
    {"chain", "length", "1", true},
    {"chain", "length", "0", false},
    {"chain", "length", "8", true},
    {"chain", "length", "9", false},
    {"chain", "backups", "0", true},
    {"chain", "backups", "4", true},
    {"chain", "backups", "5", false},
    {"chain", "lifetime", "10000", true},
    {"chain", "lifetime", "9999", false},
    {"chain", "lifetime", "86400000", true},
    {"chain", "lifetime", "86400001", false},
    {"chain", "setup_timeout", "100", true},
    {"chain", "setup_timeout", "99", false},
    {"chain", "setup_timeout", "600000", true},
    {"chain", "setup_timeout", "600001", false},
    {"client", "max_message", "1", true},
    {"client", "max_message", "0", false},
    {"client", "max_message", "67108864", true},
    {"client", "max_message", "67108865", false},
    {"client", "inbox_messages", "1", true},
    {"client", "inbox_messages", "0", false},
    {"client", "inbox_messages", "1000000", true},
    {"client", "inbox_messages", "1000001", false},
    {"client", "inbox_bytes", "1024", true},
    {"client", "inbox_bytes", "1023", false},
    {"client", "inbox_bytes", "4294967296", true},
    {"client", "inbox_bytes", "4294967297", false},
    {"client", "send_queue", "1", true},
    {"client", "send_queue", "0", false},
    {"client", "send_queue", "100000", true},
    {"client", "send_queue", "100001", false},
    {"client", "reassembly_timeout", "1001", true}, /* above the smallest deadline */
    {"client", "retransmit", "100", true},
    {"client", "retransmit", "99", false},
    {"client", "retransmit", "600001", false},
    {"client", "deadline", "1000", true},
    {"client", "deadline", "999", false},
    {"client", "reassembly_timeout", "999", false},
    {"client", "reassembly_timeout", "3600000", true},
    {"client", "reassembly_timeout", "3600001", false},
    {"client", "replay_window", "10000", true},
    {"client", "replay_window", "9999", false},
    {"client", "replay_window", "86400000", true},
    {"client", "replay_window", "86400001", false},
    {"client", "tombstones", "16", true},
    {"client", "tombstones", "15", false},
    {"client", "tombstones", "10000000", true},
    {"client", "tombstones", "10000001", false},
    {"relay", "max_chains", "1", true},
    {"relay", "max_chains", "0", false},
    {"relay", "max_chains", "10000000", true},
    {"relay", "max_chains", "10000001", false},
    {"relay", "setup_timeout", "100", true},
    {"relay", "setup_timeout", "99", false},
    {"relay", "setup_timeout", "600000", true},
    {"relay", "setup_timeout", "600001", false},
    {"relay", "max_lifetime", "10", true},
    {"relay", "max_lifetime", "9", false},
    {"relay", "max_lifetime", "86400", true},
    {"relay", "max_lifetime", "86401", false},
    {"relay", "exit_queue", "1", true},
    {"relay", "exit_queue", "0", false},
    {"relay", "exit_queue", "65536", true},
    {"relay", "exit_queue", "65537", false},
    {"relay", "exit_queue", "-1", false},
    {"relay", "exit_queue", "1e3", false},
    {"relay", "max_chains_per_link", "0", true},
    {"relay", "max_chains_per_link", "10000000", true},
    {"relay", "max_chains_per_link", "10000001", false},
    {"relay", "max_chains_per_block", "0", true},
    {"relay", "max_chains_per_block", "10000000", true},
    {"relay", "max_chains_per_block", "10000001", false},
    {"relay", "stall_timeout", "100", true},
    {"relay", "stall_timeout", "99", false},
    {"relay", "stall_timeout", "0", false},
    {"relay", "stall_timeout", "600000", true},
    {"relay", "stall_timeout", "600001", false},
    {"relay", "capacity", "0", true},
    {"relay", "capacity", "10000000", true},
    {"relay", "capacity", "10000001", false},
    {"relay", "capacity", "4294967296", false},
    {"relay", "capacity", "-1", false},
    {"relay", "loop_interval", "0", true},
    {"relay", "loop_interval", "9", false},
    {"relay", "loop_interval", "10", true},
    {"relay", "loop_interval", "3600000", true},
    {"relay", "loop_interval", "3600001", false},
    {"node", "rate", "0", true},
    {"node", "rate", "65535", false},
    {"node", "rate", "65536", true},
    {"node", "rate", "64 KiB", true},
    {"node", "rate", "64 KB", false},
    {"node", "rate", "1 TiB", true},
    {"node", "rate", "1099511627777", false},
    {"node", "rate", "1 TB", true},
    {"node", "rate", "2TB", false},
    {"relay", "rate", "1 MB", true},
    {"relay", "rate", "1.5 MB", false},
    {"relay", "rate", "1 Mb/s", false},
    {"relay", "rate", "MB", false},
    {"relay", "rate", "-1", false},
    {"relay", "rate", "1 Ki", false},
    {"relay", "rate", "99999999999999999999", false},
    {"relay", "rate", "18446744073709551615 TiB", false},
    {"relay", "max_per_day", "0", true},
    {"relay", "max_per_day", "1MiB", true},
    {"relay", "max_per_day", "1MB", false},
    {"relay", "max_per_month", "1024 TiB", true},
    {"relay", "max_per_month", "1025 TiB", false},
    {"relay", "accounting_start", "00:00", true},
    {"relay", "accounting_start", "23:59", true},
    {"relay", "accounting_start", "28 23:59", true},
    {"relay", "accounting_start", "24:00", false},
    {"relay", "accounting_start", "12:60", false},
    {"relay", "accounting_start", "29 00:00", false},
    {"relay", "accounting_start", "0 00:00", false},
    {"relay", "accounting_start", "-1 00:00", false},
    {"relay", "accounting_start", "1 00:00 x", false},
    {"relay", "accounting_start", "noon", false},
    {"relay", "accounting_start", "", false},
};

START_TEST(test_role_ranges)
{
    struct ovl_config c;
    char text[256], err[CONFIG_ERR_MAX];

    /* ttl is raised so that any accepted heartbeat stays below it. */
    /* ... and deadline lowered below any accepted reassembly_timeout. */
    snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s%s", role_range_cases[_i].sect,
             role_range_cases[_i].key, role_range_cases[_i].value,
             strcmp(role_range_cases[_i].key, "reassembly_timeout") == 0 ? "deadline = 1000\n" : "",
             strcmp(role_range_cases[_i].key, "ttl") != 0 ? "[dir]\nttl = 86400000\n"
                                                          : "[dir]\nheartbeat = 1000\n");
    int rc = parse(&c, text, err, sizeof(err));
    if (role_range_cases[_i].ok) {
        ck_assert_msg(rc == 0, "[%s] %s = %s: %s", role_range_cases[_i].sect,
                      role_range_cases[_i].key, role_range_cases[_i].value, err);
    } else {
        ck_assert_int_eq(rc, OVL_EINVAL);
        ck_assert_msg(strncmp(err, NAME ":2: ", strlen(NAME ":2: ")) == 0, "%s", err);
    }
}
END_TEST

/* Rejected role settings and bootstrap sections. */
static const struct bad_case role_bad_cases[] = {
    {"ttl equal to heartbeat", "[dir]\nheartbeat = 15000\n", 2,
     "ttl (15000) must be greater than heartbeat (15000)"},
    {"ttl below heartbeat", "[dir]\nttl = 3000\n\nheartbeat = 4000\n", 4,
     "must be greater than heartbeat"},
    {"ttl below default heartbeat", "[dir]\nttl = 4000\n", 2, "ttl (4000)"},
    {"bad source", "[chain]\nsource = relays\n", 2, "unknown source 'relays'"},
    {"cover budget over 100", "[node]\ncover_budget = 101\n", 2, "out of range (0..100)"},
    {"cover budget in [client]", "[client]\ncover_budget = 50\n", 2,
     "unknown key 'cover_budget' in [client]"},
    {"bad weighting", "[chain]\nweighting = bandwidth\n", 2,
     "unknown weighting 'bandwidth' (expected uniform or capacity)"},
    {"capacity too high", "[relay]\ncapacity = 10000001\n", 2, "out of range (0..10000000)"},
    {"duplicate weighting", "[chain]\nweighting = uniform\nweighting = capacity\n", 3,
     "duplicate key 'weighting' in [chain]"},
    {"constant rate too high", "[client]\nconstant_rate = 10001\n", 2, "0 or 1..10000"},
    {"duplicate source", "[chain]\nsource = local\nsource = local\n", 3,
     "duplicate key 'source' in [chain]"},
    {"key in wrong role section", "[relay]\nlength = 3\n", 2, "unknown key 'length' in [relay]"},
    {"unknown role section", "[exits]\n", 1, "unknown section [exits]"},
    {"duplicate across chain sections", "[chain]\nlength = 3\n[client]\n[chain]\nlength = 4\n", 5,
     "duplicate key 'length'"},
    {"bootstrap without id", "[bootstrap.a]\naddress = tcp://127.0.0.1:1\n", 1,
     "bootstrap a has no id"},
    {"bootstrap without address", "[node]\n[bootstrap.b]\nid = @ID@\n", 2,
     "bootstrap b has no address"},
    {"bootstrap bad id", "[bootstrap.a]\naddress = tcp://127.0.0.1:1\nid = xyz\n", 3,
     "bootstrap a: bad id 'xyz'"},
    {"bootstrap port 0", "[bootstrap.a]\naddress = tcp://127.0.0.1:0\nid = @ID@\n", 2,
     "bootstrap a: address 'tcp://127.0.0.1:0' needs a port"},
    {"bootstrap bad transport", "[bootstrap.a]\naddress = foo://127.0.0.1:1\n", 2,
     "unknown transport 'foo'"},
    {"bootstrap given twice",
     "[bootstrap.a]\naddress = tcp://127.0.0.1:1\nid = @ID@\n[bootstrap.a]\n", 4,
     "section [bootstrap.a] given twice (first on line 1)"},
    {"bootstrap duplicate key", "[bootstrap.a]\nid = @ID@\nid = @ID@\n", 3,
     "duplicate key 'id' in [bootstrap.a]"},
    {"bootstrap bad name", "[bootstrap.a:b]\n", 1, "bad bootstrap name 'a:b'"},
    {"bootstrap empty name", "[bootstrap.]\n", 1, "bad bootstrap name ''"},
    {"bootstrap unknown key", "[bootstrap.a]\nttl = 5\n", 2, "unknown key 'ttl' in [bootstrap.a]"},
    {"burst without rate", "[node]\nburst = 1 MB\n", 2, "[node] burst needs [node] rate"},
    {"relay burst without rate", "[relay]\nburst = 1 MB\n", 2, "[relay] burst needs [relay] rate"},
    {"relay rate without relay", "[node]\nroles = client\n[relay]\nrate = 1 MB\n", 4,
     "[relay] rate needs the relay role"},
    {"accounting without relay", "[node]\nroles = client\n[relay]\nmax_per_day = 1 GB\n", 4,
     "[relay] max_per_day needs the relay role"},
    {"bad size", "[node]\nrate = 5 parsecs\n", 2, "bad size '5 parsecs' for rate"},
    {"burst too small", "[node]\nrate = 1 MB\nburst = 8191\n", 3,
     "burst = 8191 is out of range (0 or 8192..1099511627776 bytes)"},
    {"bootstraps with one id",
     "[bootstrap.a]\naddress = tcp://127.0.0.1:1\nid = @ID@\n"
     "[bootstrap.b]\naddress = tcp://127.0.0.1:2\nid = @ID@\n",
     4, "bootstrap b has the same id as bootstrap a"},
};

START_TEST(test_role_bad)
{
    check_bad(&role_bad_cases[_i]);
}
END_TEST

/* Append "[KIND.NAMEi]" with the node ID of key byte b to text at *o. */
static void add_named(char *text, size_t size, size_t *o, const char *kind, unsigned i, uint8_t b)
{
    uint8_t pk[OVL_ED25519_PK];
    char id[OVL_NODE_ID_LEN + 1];

    memset(pk, b, sizeof(pk));
    node_id_format(id, pk);
    int n = snprintf(text + *o, size - *o, "[%s.n%u]\naddress = tcp://127.0.0.1:%u\nid = %s\n",
                     kind, i, i + 1, id);
    ck_assert(n > 0 && (size_t)n < size - *o);
    *o += (size_t)n;
}

START_TEST(test_bootstrap_limit)
{
    static char text[16 * 160];
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];
    size_t o = 0;

    for (unsigned i = 0; i < DIR_MAX_BOOTSTRAPS; i++)
        add_named(text, sizeof(text), &o, "bootstrap", i, (uint8_t)(i + 1));
    ck_assert_msg(config_parse_string(&c, NAME, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.n_bootstraps, DIR_MAX_BOOTSTRAPS);
    add_named(text, sizeof(text), &o, "bootstrap", DIR_MAX_BOOTSTRAPS, 0x77);
    ck_assert_int_eq(config_parse_string(&c, NAME, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, NAME ":25: too many bootstraps (at most 8)") == err, "%s", err);
}
END_TEST

/* Bootstraps are dialed after the peers, unless a peer already has their id. */
START_TEST(test_dial_peers)
{
    static char text[80 * 160];
    struct peer_spec dial[NODE_MAX_PEERS];
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];
    size_t o = 0;

    add_named(text, sizeof(text), &o, "peer", 0, 1);
    add_named(text, sizeof(text), &o, "bootstrap", 1, 2);
    add_named(text, sizeof(text), &o, "bootstrap", 2, 1); /* same id as peer n0 */
    add_named(text, sizeof(text), &o, "peer", 3, 3);
    ck_assert_msg(config_parse_string(&c, NAME, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.n_peers, 2);
    ck_assert_uint_eq(c.n_bootstraps, 2);
    ck_assert_uint_eq(config_dial_peers(&c, dial), 3);
    ck_assert_str_eq(dial[0].name, "n0");
    ck_assert_str_eq(dial[1].name, "n3");
    ck_assert_str_eq(dial[2].name, "n1");
    ck_assert_str_eq(dial[2].uri, "tcp://127.0.0.1:2");
    ck_assert_uint_eq(dial[2].pk[0], 2);
    ck_assert_uint_eq(config_dial_peers(NULL, dial), 0);

    /* 63 peers leave room for one new bootstrap, not two. */
    o = 0;
    for (unsigned i = 0; i < NODE_MAX_PEERS - 1; i++)
        add_named(text, sizeof(text), &o, "peer", i, (uint8_t)(i + 1));
    add_named(text, sizeof(text), &o, "bootstrap", 100, 1); /* already a peer */
    add_named(text, sizeof(text), &o, "bootstrap", 101, 200);
    ck_assert_msg(config_parse_string(&c, NAME, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(config_dial_peers(&c, dial), NODE_MAX_PEERS);
    ck_assert_str_eq(dial[NODE_MAX_PEERS - 1].name, "n101");
    add_named(text, sizeof(text), &o, "bootstrap", 102, 201);
    ck_assert_int_eq(config_parse_string(&c, NAME, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, "too many nodes to dial: 63 [peer.NAME] and 2 [bootstrap.NAME]"),
                  "%s", err);
}
END_TEST

/* [exit] policy: each line adds its rules after the earlier lines'. */
static const struct {
    const char *text;
    const char *policy; /* as exit_policy_format writes it */
} policy_cases[] = {
    {"[exit]\npolicy = accept *:443, reject *:*\n", "accept *:443, reject *:*"},
    {"[exit]\npolicy = reject 10.0.0.0/8:*\npolicy = accept [2001:db8::]/32:80-88 ; web\n"
     "[node]\nroles = relay, client\n",
     "reject 10.0.0.0/8:*, accept [2001:db8::]/32:80-88"},
    {"[node]\nroles = bootstrap,relay\n[exit]\npolicy=accept *4:22,accept *6:22\n",
     "accept *4:22, accept *6:22"},
    {"[exit]\npolicy = reject 127.0.0.1/8:*,\n", "reject 127.0.0.0/8:*"},
};

START_TEST(test_policy)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX], text[1024];

    ck_assert_msg(parse(&c, policy_cases[_i].text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(exit_policy_format(&c.dir.exit_policy, text, sizeof(text)), 0);
    ck_assert_str_eq(text, policy_cases[_i].policy);
}
END_TEST

/* At most 32 rules in all, and what fits a descriptor. */
START_TEST(test_policy_limits)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX], text[4096] = "[exit]\n";
    int port = 1;

    for (int line = 0; line < 3; line++) { /* 3 lines of 11 rules */
        strcat(text, "policy = ");
        for (int i = 0; i < 11; i++, port++)
            snprintf(text + strlen(text), sizeof(text) - strlen(text), "%saccept *:%d",
                     i ? ", " : "", port);
        strcat(text, "\n");
    }
    ck_assert_int_eq(parse(&c, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, NAME ":4: policy rule 11: more than 32 rules"), "%s", err);
    strcpy(strrchr(text, ','), "\n"); /* 32 rules */
    ck_assert_msg(parse(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.dir.exit_policy.n, 32);

    /* IPv6 /128 with a port range: 22 bytes a rule, 11 fit in 255 */
    strcpy(text, "[exit]\n");
    for (int line = 0; line < 2; line++) {
        strcat(text, "policy = ");
        for (int i = 0; i < 6; i++)
            snprintf(text + strlen(text), sizeof(text) - strlen(text),
                     "%saccept [2001:db8::%d]:80-81", i ? ", " : "", 6 * line + i);
        strcat(text, "\n");
    }
    ck_assert_int_eq(parse(&c, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, NAME ":3: policy too long for a descriptor"), "%s", err);
    strcpy(strrchr(text, ','), "\n"); /* 11 rules */
    ck_assert_msg(parse(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.dir.exit_policy.n, 11);
}
END_TEST

/* [relay] family: IDs apart by blanks or commas (three fit a line), lines
 * added up, at most 8. */
START_TEST(test_family)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX], text[1024] = "[relay]\nfamily = ";
    char ids[9][OVL_NODE_ID_LEN + 1], *last = text;
    uint8_t pk[9][OVL_ED25519_PK];

    for (unsigned i = 0; i < 9; i++) {
        memset(pk[i], (int)i + 1, sizeof(pk[i]));
        node_id_format(ids[i], pk[i]);
    }
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s %s,%s\nfamily=%s\t, %s\n",
             ids[0], ids[1], ids[2], ids[3], ids[4]);
    ck_assert_msg(parse(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.dir.n_family, 5);
    for (unsigned i = 0; i < 5; i++)
        ck_assert_mem_eq(c.dir.family[i], pk[i], OVL_ED25519_PK);
    for (unsigned i = 5; i < 9; i++) {
        last = text + strlen(text);
        snprintf(last, sizeof(text) - strlen(text), "family = %s\n", ids[i]);
    }
    ck_assert_int_eq(parse(&c, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, NAME ":7: family names over 8 relays"), "%s", err);
    *last = '\0'; /* up to ids[7]: 8 */
    ck_assert_msg(parse(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c.dir.n_family, 8);
    ck_assert_int_eq(parse(&c, "[relay]\n", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.dir.n_family, 0);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* [service] and [service.NAME]: ports, targets of every kind, caps. */
START_TEST(test_services)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX];
    const struct client_service *sv = c.client.services;

    ck_assert_int_eq(parse(&c, "[node]\nroles = client\n", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.client.n_services, 0);
    ck_assert_uint_eq(c.client.svc_max_streams, 1024);
    ck_assert_uint_eq(c.client.svc_max_per_chain, 256);
    ck_assert_uint_eq(c.client.svc_idle_ms, 300000);
    ck_assert_int_eq(parse(&c,
                           "[node]\nroles = client\n"
                           "[service]\nmax_streams = 10\nmax_streams_per_chain = 3\n"
                           "stream_idle_timeout = 5000\n"
                           "[service.web]\nport = 80\ntarget = 127.0.0.1:8080\n"
                           "[service.ssh]\ntarget = [::1]:22\nport = 22\n"
                           "[service.mail]\nport = 25\ntarget = mail.example.org:2525\n",
                           err, sizeof(err)),
                     0);
    ck_assert_uint_eq(c.client.svc_max_streams, 10);
    ck_assert_uint_eq(c.client.svc_max_per_chain, 3);
    ck_assert_uint_eq(c.client.svc_idle_ms, 5000);
    ck_assert_uint_eq(c.client.n_services, 3);
    ck_assert_str_eq(sv[0].name, "web");
    ck_assert_uint_eq(sv[0].port, 80);
    ck_assert_uint_eq(sv[0].target.atyp, STA_NAME); /* literals too: they need no DNS */
    ck_assert_str_eq(sv[0].target.name, "127.0.0.1");
    ck_assert_uint_eq(sv[0].target.port, 8080);
    ck_assert_str_eq(sv[1].target.name, "::1");
    ck_assert_uint_eq(sv[1].port, 22);
    ck_assert_uint_eq(sv[2].target.atyp, STA_NAME);
    ck_assert_str_eq(sv[2].target.name, "mail.example.org");
    ck_assert_uint_eq(sv[2].target.port, 2525);
}
END_TEST

static const struct bad_case service_bad_cases[] = {
    {"service port twice",
     "[node]\nroles = client\n[service.a]\nport = 80\ntarget = 1.2.3.4:1\n"
     "[service.b]\ntarget = 1.2.3.4:2\nport = 80\n",
     8, "service b: port 80 is service a's already (line 4)"},
    {"service without target", "[node]\nroles = client\n[service.a]\nport = 80\n", 3,
     "service a has no target"},
    {"service without port", "[node]\nroles = client\n[service.a]\ntarget = h:1\n", 3,
     "service a has no port"},
    {"service port 0", "[node]\nroles = client\n[service.a]\nport = 0\n", 4, "bad port '0'"},
    {"service port big", "[node]\nroles = client\n[service.a]\nport = 65536\n", 4, "bad port"},
    {"service target no port", "[node]\nroles = client\n[service.a]\ntarget = h\n", 4,
     "bad target 'h'"},
    {"service target port 0", "[node]\nroles = client\n[service.a]\ntarget = h:0\n", 4,
     "bad target"},
    {"service target scheme", "[node]\nroles = client\n[service.a]\ntarget = tcp://h:1\n", 4,
     "bad target"},
    {"service twice", "[node]\nroles = client\n[service.a]\n[service.a]\n", 4,
     "section [service.a] given twice (first on line 3)"},
    {"service bad name", "[node]\nroles = client\n[service.a b]\n", 3, "bad service name"},
    {"service on a relay", "[node]\nroles = relay\n[service.a]\nport = 1\ntarget = h:1\n", 3,
     "[service.a] needs the client role"},
    {"service key twice", "[node]\nroles = client\n[service.a]\nport = 1\nport = 2\n", 5,
     "duplicate key 'port'"},
    {"service unknown key", "[node]\nroles = client\n[service.a]\naddress = h:1\n", 4,
     "unknown key 'address' in [service.a]"},
    {"service cap 0", "[service]\nmax_streams = 0\n", 2, "out of range"},
};

START_TEST(test_service_bad)
{
    check_bad(&service_bad_cases[_i]);
}
END_TEST

START_TEST(test_service_limit)
{
    char text[8192], err[CONFIG_ERR_MAX];
    struct ovl_config c;
    size_t o = (size_t)snprintf(text, sizeof(text), "[node]\nroles = client\n");

    for (unsigned i = 0; i <= CLIENT_MAX_SERVICES; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o,
                              "[service.s%u]\nport = %u\ntarget = h:1\n", i, i + 1);
    ck_assert_int_eq(parse(&c, text, err, sizeof(err)), OVL_EINVAL);
    ck_assert_msg(strstr(err, "too many services (at most 16)") != NULL, "%s", err);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_full);
    tcase_add_loop_test(tc, test_defaults, 0, N(empty_confs));
    tcase_add_loop_test(tc, test_good, 0, N(good_cases));
    tcase_add_loop_test(tc, test_ranges, 0, N(range_cases));
    tcase_add_loop_test(tc, test_bad, 0, N(bad_cases));
    tcase_add_loop_test(tc, test_quic_bad, 0, N(quic_bad_cases));
    tcase_add_loop_test(tc, test_transports, 0, N(tp_cases));
    tcase_add_test(tc, test_peer_limit);
    tcase_add_test(tc, test_aead);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_load_nul);
    tcase_add_test(tc, test_missing_file);
    tcase_add_loop_test(tc, test_roles_format, 0, N(fmt_cases));
    tcase_add_test(tc, test_roles_full);
    tcase_add_loop_test(tc, test_role_ranges, 0, N(role_range_cases));
    tcase_add_loop_test(tc, test_role_bad, 0, N(role_bad_cases));
    tcase_add_test(tc, test_bootstrap_limit);
    tcase_add_test(tc, test_dial_peers);
    tcase_add_loop_test(tc, test_policy, 0, N(policy_cases));
    tcase_add_test(tc, test_policy_limits);
    tcase_add_test(tc, test_family);
    tcase_add_test(tc, test_services);
    tcase_add_loop_test(tc, test_service_bad, 0, N(service_bad_cases));
    tcase_add_test(tc, test_service_limit);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *config_suite_with_id(void)
{
    make_id();
    return config_suite();
}

OVL_CHECK_MAIN(config_suite_with_id)
