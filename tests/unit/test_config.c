/* test_config.c - unit tests for the INI configuration (src/app/config.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovl_config.h"

#include "app/config.h"
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
                                "\n"
                                "[log]\n"
                                "level = debug\n"
                                "syslog = yes\n"
                                "\n"
                                "[link]\n"
                                "handshake_timeout = 2500\n"
                                "idle_timeout = 30000\n"
                                "max_links = 99\n"
                                "send_queue = 65536\n"
                                "rekey_cells = 4294967296\n"
                                "reconnect_min = 200\n"
                                "reconnect_max = 9000\n"
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
    ck_assert_uint_eq(c.opts.sendq_max, 65536);
    ck_assert_uint_eq(c.opts.rekey_cells, UINT64_C(4294967296));
    ck_assert_uint_eq(c.opts.reconnect_min_ms, 200);
    ck_assert_uint_eq(c.opts.reconnect_max_ms, 9000);
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
    ck_assert_uint_eq(c->n_listen, 0);
    ck_assert_uint_eq(c->n_peers, 0);
    ck_assert_int_eq(c->log_level, OVL_LOG_INFO);
    ck_assert(!c->syslog);
    ck_assert_uint_eq(c->opts.aead_suites, ovl_aead_available());
    ck_assert_uint_eq(c->opts.handshake_timeout_ms, 5000);
    ck_assert_uint_eq(c->opts.idle_timeout_ms, 0);
    ck_assert_uint_eq(c->opts.max_links, 1024);
    ck_assert_uint_eq(c->opts.sendq_max, 1048576);
    ck_assert_uint_eq(c->opts.rekey_cells, 1048576);
    ck_assert_uint_eq(c->opts.reconnect_min_ms, 1000);
    ck_assert_uint_eq(c->opts.reconnect_max_ms, 60000);
}

/* Texts without any setting: each must give exactly the defaults. */
static const char *const empty_confs[] = {
    "",
    "\n\n",
    "; only a comment\n# and another\n",
    "[node]\n[log]\n[link]\n",
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
static const struct {
    const char *what;
    const char *text;
    unsigned line;
    const char *needle; /* expected somewhere in the message */
} bad_cases[] = {
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
    {"bad URI", "[node]\nlisten = 127.0.0.1:7001\n", 2, "bad listen '127.0.0.1:7001'"},
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
    {"reconnect_max < default min", "[link]\n\nreconnect_max = 1000\nreconnect_min = 1001\n", 4,
     "below reconnect_min"},
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
};

START_TEST(test_bad)
{
    struct ovl_config c;
    char err[CONFIG_ERR_MAX], prefix[32];

    snprintf(prefix, sizeof(prefix), NAME ":%u: ", bad_cases[_i].line);
    int rc = parse(&c, bad_cases[_i].text, err, sizeof(err));
    ck_assert_msg(rc == OVL_EINVAL, "%s: rc %d", bad_cases[_i].what, rc);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: want '%s...', got '%s'",
                  bad_cases[_i].what, prefix, err);
    ck_assert_msg(strstr(err, bad_cases[_i].needle) != NULL, "%s: want '%s' in '%s'",
                  bad_cases[_i].what, bad_cases[_i].needle, err);
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

    config_roles_format(out, sizeof(out), fmt_cases[_i].roles);
    ck_assert_str_eq(out, fmt_cases[_i].want);
    config_roles_format(out, 4, ROLE_BOOTSTRAP);
    ck_assert_uint_lt(strlen(out), 4);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_full);
    tcase_add_loop_test(tc, test_defaults, 0, N(empty_confs));
    tcase_add_loop_test(tc, test_good, 0, N(good_cases));
    tcase_add_loop_test(tc, test_ranges, 0, N(range_cases));
    tcase_add_loop_test(tc, test_bad, 0, N(bad_cases));
    tcase_add_test(tc, test_peer_limit);
    tcase_add_test(tc, test_aead);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_load_nul);
    tcase_add_test(tc, test_missing_file);
    tcase_add_loop_test(tc, test_roles_format, 0, N(fmt_cases));
    suite_add_tcase(s, tc);
    return s;
}

static Suite *config_suite_with_id(void)
{
    make_id();
    return config_suite();
}

OVL_CHECK_MAIN(config_suite_with_id)
