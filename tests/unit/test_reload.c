/* test_reload.c - unit tests of what a reload decides (src/app/config_diff.c
 * and the .reload column of config_keys.c): every key is classified, the
 * diff sees a change of every key and nothing else, names the changed
 * named sections, and keeps the running value of what takes a restart. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/config_diff.h"
#include "core/transport.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "check_main.h"

#define N(a)    (sizeof(a) / sizeof((a)[0]))
#define RL_ALL  (RL_RESTART | RL_LOG | RL_NODE | RL_DIR | RL_RELAY | RL_CLIENT | RL_APP)
#define TEXTMAX 8192

/* Three node IDs: @ID@, @ID2@, @ID3@ in the texts. */
static char ids[3][OVL_NODE_ID_LEN + 1];

/* The running configuration of every case: section|key|value rows. */
static const char *const base_rows[] = {
    "node|roles|relay, client",
    "node|data_dir|/tmp/ovl-a",
    "node|listen|tcp://127.0.0.1:7001",
    "node|control_socket|/tmp/ovl-a.sock",
    "node|transports|tcp",
    "peer.p1|address|tcp://10.0.0.1:7001",
    "peer.p1|id|@ID@",
    "bootstrap.b1|address|tcp://10.0.0.9:7000",
    "bootstrap.b1|id|@ID2@",
    "socks|listen|127.0.0.1:9050",
    "service.web|port|80",
    "service.web|target|127.0.0.1:8080",
};

/* Each case changes the base (rows separated by ';', a value of "-"
 * removes the row) and names what the diff must report. */
struct change {
    const char *rows;
    const char *names; /* as cfg_diff_names gives them, separated by ',' */
};

static const struct change changes[] = {
    {"node|roles|relay, client, bootstrap", "node.roles"},
    {"node|data_dir|/tmp/ovl-b", "node.data_dir"},
    {"node|listen|tcp://127.0.0.1:7002", "node.listen"},
    {"node|listen|tcp://127.0.0.1:7001;node|listen|tcp://127.0.0.1:7003", "node.listen"},
    {"node|control_socket|/tmp/ovl-b.sock", "node.control_socket"},
    {"node|aead|chacha20poly1305", "node.aead"},
    {"node|transports|tcp,quic", "node.transports"},
    {"node|transports|tcp,quic;node|prefer|quic", "node.transports,node.prefer"},
    {"node|max_queued|2097152", "node.max_queued"},
    {"node|cover_budget|40", "node.cover_budget"},
    {"node|roles|client;node|listen|-;node|hidden|true", "node.roles,node.listen,node.hidden"},
    {"node|intros|3", "node.intros"},
    {"node|rate|1 MB", "node.rate"},
    {"node|rate|1 MB;node|burst|2 MB", "node.rate,node.burst"},
    {"log|level|debug", "log.level"},
    {"log|syslog|yes", "log.syslog"},
    {"link|handshake_timeout|2500", "link.handshake_timeout"},
    {"link|idle_timeout|30000", "link.idle_timeout"},
    {"link|heartbeat|700", "link.heartbeat"},
    {"link|heartbeat_misses|5", "link.heartbeat_misses"},
    {"link|padding_min|100", "link.padding_min"},
    {"link|padding_max|20000", "link.padding_max"},
    {"link|max_links|99", "link.max_links"},
    {"link|max_links_per_block|7", "link.max_links_per_block"},
    {"link|handshake_rate|0", "link.handshake_rate"},
    {"link|handshake_burst|3", "link.handshake_burst"},
    {"link|send_queue|65536", "link.send_queue"},
    {"link|rekey_cells|4294967296", "link.rekey_cells"},
    {"link|reconnect_min|200", "link.reconnect_min"},
    {"link|reconnect_max|9000", "link.reconnect_max"},
    {"peer.p1|address|tcp://10.0.0.2:7001", "peer.p1"},
    {"peer.p1|id|@ID3@", "peer.p1"},
    {"peer.p2|address|tcp://10.0.0.3:7001;peer.p2|id|@ID3@", "peer.p2 (added)"},
    {"peer.p1|address|-;peer.p1|id|-", "peer.p1 (removed)"},
    {"bootstrap.b1|address|tcp://10.0.0.8:7000", "bootstrap.b1"},
    {"bootstrap.b1|id|@ID3@", "bootstrap.b1"},
    {"bootstrap.b2|address|tcp://10.0.0.7:7000;bootstrap.b2|id|@ID3@", "bootstrap.b2 (added)"},
    {"bootstrap.b1|address|-;bootstrap.b1|id|-", "bootstrap.b1 (removed)"},
    {"dir|heartbeat|2000", "dir.heartbeat"},
    {"dir|ttl|20000", "dir.ttl"},
    {"dir|chain_cache_ttl|5000", "dir.chain_cache_ttl"},
    {"dir|max_nodes|10", "dir.max_nodes"},
    {"dir|max_cached_chains|10", "dir.max_cached_chains"},
    {"dir|onion_rotate|70000", "dir.onion_rotate"},
    {"dir|onion_overlap|1000", "dir.onion_overlap"},
    {"dir|request_timeout|1000", "dir.request_timeout"},
    {"dir|request_rate|5", "dir.request_rate"},
    {"dir|request_burst|5", "dir.request_burst"},
    {"dir|allow_private_addresses|true", "dir.allow_private_addresses"},
    {"dir|chain_refresh|0", "dir.chain_refresh"},
    {"dir|block_request_rate|0", "dir.block_request_rate"},
    {"dir|block_request_burst|7", "dir.block_request_burst"},
    {"dir|block_chain_rate|0", "dir.block_chain_rate"},
    {"dir|block_chain_burst|7", "dir.block_chain_burst"},
    {"dir|max_nodes_per_block|0", "dir.max_nodes_per_block"},
    {"dir|list_lifetime|20000", "dir.list_lifetime"},
    {"dir|list_rate|0", "dir.list_rate"},
    {"chain|source|local", "chain.source"},
    {"chain|distinct_subnets|false", "chain.distinct_subnets"},
    {"chain|weighting|capacity", "chain.weighting"},
    {"chain|length|2", "chain.length"},
    {"chain|backups|1", "chain.backups"},
    {"chain|lifetime|20000", "chain.lifetime"},
    {"chain|setup_timeout|2000", "chain.setup_timeout"},
    {"chain|choices|2", "chain.choices"},
    {"client|max_message|2048", "client.max_message"},
    {"client|inbox_messages|10", "client.inbox_messages"},
    {"client|inbox_bytes|4096", "client.inbox_bytes"},
    {"client|send_queue|10", "client.send_queue"},
    {"client|reassembly_timeout|70000", "client.reassembly_timeout"},
    {"client|retransmit|500", "client.retransmit"},
    {"client|deadline|20000", "client.deadline"},
    {"client|cover_interval|100", "client.cover_interval"},
    {"client|loop_interval|100", "client.loop_interval"},
    {"client|constant_rate|5", "client.constant_rate"},
    {"client|replay_window|20000", "client.replay_window"},
    {"client|tombstones|100", "client.tombstones"},
    {"client|max_chains|3", "client.max_chains"},
    {"client|chain_idle|5000", "client.chain_idle"},
    {"client|guards|1", "client.guards"},
    {"client|guard_down|120000", "client.guard_down"},
    {"client|guard_lifetime|120000", "client.guard_lifetime"},
    {"relay|max_chains|100", "relay.max_chains"},
    {"relay|setup_timeout|2000", "relay.setup_timeout"},
    {"relay|max_lifetime|100", "relay.max_lifetime"},
    {"relay|exit_queue|10", "relay.exit_queue"},
    {"relay|max_chains_per_link|5", "relay.max_chains_per_link"},
    {"relay|max_chains_per_block|6", "relay.max_chains_per_block"},
    {"relay|stall_timeout|2000", "relay.stall_timeout"},
    {"relay|capacity|100", "relay.capacity"},
    {"relay|loop_interval|100", "relay.loop_interval"},
    {"relay|family|@ID3@", "relay.family"},
    {"relay|rate|1 MiB", "relay.rate"},
    {"relay|rate|1 MiB;relay|burst|2 MiB", "relay.rate,relay.burst"},
    {"relay|max_per_day|1 GB", "relay.max_per_day"},
    {"relay|max_per_month|10 GB", "relay.max_per_month"},
    {"relay|accounting_start|2 03:30", "relay.accounting_start"},
    {"exit|policy|accept *:80", "exit.policy"},
    {"exit|max_streams|10", "exit.max_streams"},
    {"exit|max_streams_per_chain|5", "exit.max_streams_per_chain"},
    {"exit|stream_idle_timeout|5000", "exit.stream_idle_timeout"},
    {"socks|listen|127.0.0.1:9051", "socks.listen"},
    {"socks|listen|127.0.0.1:9050;socks|listen|127.0.0.1:9052", "socks.listen"},
    {"socks|allow_remote|true", "socks.allow_remote"},
    {"service|max_streams|5", "service.max_streams"},
    {"service|max_streams_per_chain|3", "service.max_streams_per_chain"},
    {"service|stream_idle_timeout|5000", "service.stream_idle_timeout"},
    {"service.web|port|81", "service.web"},
    {"service.web|target|127.0.0.1:8081", "service.web"},
    {"service.api|port|82;service.api|target|127.0.0.1:82", "service.api (added)"},
    {"service.web|port|-;service.web|target|-", "service.web (removed)"},
    {"metrics|listen|127.0.0.1:9101", "metrics.listen"},
};

static void make_ids(void)
{
    uint8_t pk[OVL_ED25519_PK];

    for (unsigned k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof(pk); i++)
            pk[i] = (uint8_t)(i + 1 + 40 * k);
        node_id_format(ids[k], pk);
    }
}

/* Append s to out (at *len), with @ID@, @ID2@ and @ID3@ replaced. */
static void put(char *out, size_t *len, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *id = NULL;
        size_t skip = 0;

        if (strncmp(s + i, "@ID@", 4) == 0)
            id = ids[0], skip = 4;
        else if (strncmp(s + i, "@ID2@", 5) == 0)
            id = ids[1], skip = 5;
        else if (strncmp(s + i, "@ID3@", 5) == 0)
            id = ids[2], skip = 5;
        if (id) {
            ck_assert_uint_lt(*len + OVL_NODE_ID_LEN, TEXTMAX);
            memcpy(out + *len, id, OVL_NODE_ID_LEN);
            *len += OVL_NODE_ID_LEN;
            i += skip;
        } else {
            ck_assert_uint_lt(*len + 1, TEXTMAX);
            out[(*len)++] = s[i++];
        }
    }
    out[*len] = '\0';
}

/* The rows: the base's, then the change's ("sect|key|value"), split. */
struct row {
    char sect[32], key[32], value[96];
    bool gone;
};

static unsigned split_rows(const char *text, char sep, struct row *rows, unsigned n)
{
    while (text && *text) {
        const char *end = strchr(text, sep);
        size_t len = end ? (size_t)(end - text) : strlen(text);
        char buf[160];
        char *a, *b;

        ck_assert_uint_lt(len, sizeof(buf));
        memcpy(buf, text, len);
        buf[len] = '\0';
        a = strchr(buf, '|');
        b = a ? strchr(a + 1, '|') : NULL;
        ck_assert_ptr_nonnull(b);
        *a = *b = '\0';
        memset(&rows[n], 0, sizeof(rows[n]));
        ck_assert(strlen(buf) < sizeof(rows[n].sect) && strlen(a + 1) < sizeof(rows[n].key) &&
                  strlen(b + 1) < sizeof(rows[n].value));
        memcpy(rows[n].sect, buf, strlen(buf) + 1);
        memcpy(rows[n].key, a + 1, strlen(a + 1) + 1);
        memcpy(rows[n].value, b + 1, strlen(b + 1) + 1);
        rows[n].gone = strcmp(b + 1, "-") == 0;
        n++;
        text = end ? end + 1 : NULL;
    }
    return n;
}

/* Parse the base with the change (NULL: none) into c. */
static void parse_with(struct ovl_config *c, const char *change)
{
    struct row rows[64];
    char text[TEXTMAX], err[CONFIG_ERR_MAX];
    unsigned n = 0, n_base = N(base_rows), m;
    size_t len = 0;

    for (unsigned i = 0; i < n_base; i++)
        n = split_rows(base_rows[i], ';', rows, n);
    m = split_rows(change, ';', rows, n);
    /* A changed key replaces the base's rows of the same key (all of them:
     * a repeated key is given whole). */
    for (unsigned j = n; j < m; j++)
        for (unsigned i = 0; i < n; i++)
            if (strcmp(rows[i].sect, rows[j].sect) == 0 && strcmp(rows[i].key, rows[j].key) == 0)
                rows[i].gone = true;
    text[0] = '\0';
    for (unsigned i = 0; i < m; i++) {
        bool first = true;

        for (unsigned j = 0; j < i && first; j++)
            first = strcmp(rows[j].sect, rows[i].sect) != 0;
        if (!first)
            continue; /* its section was written with the first row of it */
        for (unsigned j = i; j < m; j++) {
            char line[200];

            if (strcmp(rows[j].sect, rows[i].sect) != 0 || rows[j].gone)
                continue;
            if (first)
                snprintf(line, sizeof(line), "[%s]\n%s = %s\n", rows[j].sect, rows[j].key,
                         rows[j].value);
            else
                snprintf(line, sizeof(line), "%s = %s\n", rows[j].key, rows[j].value);
            first = false;
            put(text, &len, line, strlen(line));
        }
    }
    ck_assert_msg(config_parse_string(c, "t.conf", text, err, sizeof(err)) == 0, "%s in:\n%s", err,
                  text);
}

/* Whether change i can run here: QUIC compiled in, AES-GCM on this CPU
 * (the default aead is then both suites, not ChaCha20-Poly1305 alone). */
static bool change_runs(const struct change *ch)
{
    if (strstr(ch->rows, "quic") && !tp_bit("quic"))
        return false;
    if (strstr(ch->rows, "aead") && ovl_aead_available() == OVL_AEAD_CHACHA20POLY1305)
        return false;
    return true;
}

struct names {
    char buf[512];
    unsigned n;
};

static void add_name(void *arg, const char *name)
{
    struct names *nm = arg;
    size_t len = strlen(nm->buf);

    snprintf(nm->buf + len, sizeof(nm->buf) - len, "%s%s", nm->n++ ? "," : "", name);
}

/* Every row of the key table names what a change of it does. */
START_TEST(test_every_key_classified)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct key_def *k = &cfg_keys[i];
        const char *name = cfg_key_name(k);

        ck_assert_msg(k->reload != 0, "%s.%s: no .reload (RL_RESTART or the steps that apply it)",
                      cfg_sect_name((enum cfg_sect)k->sect), name);
        ck_assert_msg((k->reload & ~RL_ALL) == 0, "%s: unknown reload bits", name);
        ck_assert_msg(!(k->reload & RL_RESTART) || k->reload == RL_RESTART,
                      "%s: a restart and steps at once", name);
        ck_assert_msg(k->width > 0, "%s: no field for the diff to compare", name);
        ck_assert_uint_le((size_t)k->off + k->width, sizeof(struct ovl_config));
    }
}
END_TEST

/* The same file twice: nothing changed, nothing to do. */
START_TEST(test_same)
{
    struct ovl_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    struct names nm = {0};
    struct cfg_diff d;

    parse_with(a, NULL);
    parse_with(b, NULL);
    cfg_diff(a, b, &d);
    ck_assert_uint_eq(d.n_changed, 0);
    ck_assert_uint_eq(d.steps, 0);
    ck_assert_uint_eq(cfg_diff_names(&d, a, b, ~0u, 0, add_name, &nm), 0);
    free(a);
    free(b);
}
END_TEST

/* Each change is seen as exactly the keys it changed; keys seen changed
 * are counted in seen[] (test_every_key_seen). */
static void run_change(const struct change *ch, uint8_t *seen)
{
    struct ovl_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    struct names nm = {0};
    struct cfg_diff d;

    parse_with(a, NULL);
    parse_with(b, ch->rows);
    cfg_diff(a, b, &d);
    cfg_diff_names(&d, a, b, ~0u, 0, add_name, &nm);
    ck_assert_msg(strcmp(nm.buf, ch->names) == 0, "%s: the diff says \"%s\", not \"%s\"", ch->rows,
                  nm.buf, ch->names);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        seen[i] |= d.changed[i];
    free(a);
    free(b);
}

START_TEST(test_change)
{
    uint8_t seen[CFG_KEY_COUNT] = {0};

    if (change_runs(&changes[_i]))
        run_change(&changes[_i], seen);
}
END_TEST

/* The cases change every key of the table: a key added to the table
 * without a case here (and so without a check that the diff sees it)
 * fails. */
START_TEST(test_every_key_seen)
{
    uint8_t seen[CFG_KEY_COUNT] = {0};

    for (size_t i = 0; i < N(changes); i++)
        if (change_runs(&changes[i]))
            run_change(&changes[i], seen);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const char *name = cfg_key_name(&cfg_keys[i]);
        enum cfg_sect sect = (enum cfg_sect)cfg_keys[i].sect;

        if ((sect == SECT_NODE &&
             (strcmp(name, "transports") == 0 || strcmp(name, "prefer") == 0) && !tp_bit("quic")) ||
            (sect == SECT_NODE && strcmp(name, "aead") == 0 &&
             ovl_aead_available() == OVL_AEAD_CHACHA20POLY1305))
            continue;
        ck_assert_msg(seen[i], "no case of test_reload changes %s.%s", cfg_sect_name(sect), name);
    }
}
END_TEST

/* Which steps a change takes. */
static const struct {
    const char *rows;
    unsigned steps;
} step_cases[] = {
    {"log|level|debug", RL_LOG},
    {"node|listen|tcp://127.0.0.1:7002", RL_RESTART},
    {"link|heartbeat|700", RL_NODE},
    {"peer.p1|address|tcp://10.0.0.2:7001", RL_NODE},
    {"bootstrap.b1|address|tcp://10.0.0.8:7000", RL_NODE | RL_DIR},
    {"chain|distinct_subnets|false", RL_DIR | RL_CLIENT},
    {"exit|policy|accept *:80", RL_DIR},
    {"exit|max_streams|10", RL_RELAY},
    {"client|cover_interval|100", RL_CLIENT},
    {"socks|listen|127.0.0.1:9051", RL_CLIENT},
    {"client|guards|1", RL_RESTART},
    {"metrics|listen|127.0.0.1:9101", RL_APP},
    {"relay|rate|1 MiB", RL_NODE},
    {"log|level|debug;client|constant_rate|5;node|data_dir|/x", RL_LOG | RL_CLIENT | RL_RESTART},
};

START_TEST(test_steps)
{
    struct ovl_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    struct cfg_diff d;

    parse_with(a, NULL);
    parse_with(b, step_cases[_i].rows);
    cfg_diff(a, b, &d);
    ck_assert_msg(d.steps == step_cases[_i].steps, "%s: steps %#x, not %#x", step_cases[_i].rows,
                  d.steps, step_cases[_i].steps);
    free(a);
    free(b);
}
END_TEST

/* A key that takes a restart keeps its running value; the others stay
 * as read, and the named ones are listed apart. */
START_TEST(test_keep_restart)
{
    struct ovl_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    struct names later = {0}, now = {0};
    struct cfg_diff d, d2;

    parse_with(a, NULL);
    parse_with(b, "node|listen|tcp://127.0.0.1:7001;node|listen|tcp://127.0.0.1:7009;"
                  "log|level|debug;client|guards|1;service.api|port|82;"
                  "service.api|target|127.0.0.1:82");
    cfg_diff(a, b, &d);
    ck_assert_uint_eq(cfg_diff_names(&d, a, b, RL_RESTART, 0, add_name, &later), 2);
    ck_assert_str_eq(later.buf, "node.listen,client.guards");
    ck_assert_uint_eq(cfg_diff_names(&d, a, b, ~0u, RL_RESTART, add_name, &now), 2);
    ck_assert_str_eq(now.buf, "log.level,service.api (added)");
    cfg_diff_keep(b, a, &d, RL_RESTART);
    ck_assert_uint_eq(b->n_listen, 1);
    ck_assert_str_eq(b->listen[0], "tcp://127.0.0.1:7001");
    ck_assert_uint_eq(b->client.guards, a->client.guards);
    ck_assert_int_eq(b->log_level, OVL_LOG_DEBUG);
    ck_assert_uint_eq(b->client.n_services, 2);
    cfg_diff(a, b, &d2);
    ck_assert_uint_eq(d2.n_changed, 3); /* log.level, and both keys of the services */
    ck_assert_uint_eq(d2.steps, RL_LOG | RL_CLIENT);
    /* A step that failed: its keys go back too. */
    cfg_diff_keep(b, a, &d2, RL_CLIENT);
    ck_assert_uint_eq(b->client.n_services, 1);
    cfg_diff(a, b, &d2);
    ck_assert_uint_eq(d2.steps, RL_LOG);
    free(a);
    free(b);
}
END_TEST

/* One key sets both generators' rules: a kept value keeps both. */
START_TEST(test_keep_selection)
{
    struct ovl_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    struct cfg_diff d;

    parse_with(a, NULL);
    parse_with(b, "chain|distinct_subnets|false;chain|weighting|capacity");
    ck_assert(!b->dir.distinct_subnets && b->dir.by_capacity);
    cfg_diff(a, b, &d);
    cfg_diff_keep(b, a, &d, RL_DIR);
    ck_assert(b->client.distinct_subnets && b->dir.distinct_subnets);
    ck_assert(!b->client.by_capacity && !b->dir.by_capacity);
    free(a);
    free(b);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("reload");

    make_ids();
    tcase_add_test(tc, test_every_key_classified);
    tcase_add_test(tc, test_same);
    tcase_add_loop_test(tc, test_change, 0, N(changes));
    tcase_add_test(tc, test_every_key_seen);
    tcase_add_loop_test(tc, test_steps, 0, N(step_cases));
    tcase_add_test(tc, test_keep_restart);
    tcase_add_test(tc, test_keep_selection);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(reload_suite)
