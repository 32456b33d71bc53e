/* fuzz_config.c - ovld's INI configuration (src/app/config.h:
 * config_parse_string, the in-memory twin of config_load).
 *
 * Input: the text of a config file (a NUL ends it early, as in a file
 * libinih would stop reading at).
 *
 * Properties: a rejected text gives OVL_EINVAL and a "fuzz.conf:LINE:
 * message" error; an accepted one stays within its arrays, every address
 * in it parses as a URI, its link options are ones node_init accepts
 * (the daemon must not accept a config it then cannot start with), the
 * peers to dial fit NODE_MAX_PEERS, as config.h promises, an exit
 * policy is a relay's and fits its descriptor, and the same text read
 * again differs from it in no key (a reload of an unchanged file changes
 * nothing: config_diff.h).
 */
#include <string.h>

#include "app/config.h"
#include "app/config_diff.h"
#include "fuzz.h"
#include "lib/encode.h"

#define NAME "fuzz.conf"

static struct ovl_config *cfg, *again;
static struct peer_spec dial[NODE_MAX_PEERS];

static void seeds(const char *dir)
{
    struct ovl_identity id;
    char nid[OVL_NODE_ID_LEN + 1], text[4096];
    int n;

    fuzz_identity(&id, 30);
    node_id_format(nid, id.pk);
    n = snprintf(text, sizeof(text),
                 "; every [node], [log] and [link] key, as in tests/unit/test_config.c\n"
                 "[node]\nroles = bootstrap, client\ndata_dir = /tmp/ovl-data\n"
                 "listen = tcp://127.0.0.1:7001\nlisten = tcp://[::1]:0\n"
                 "control_socket = /tmp/ovl.sock\naead = chacha20poly1305\ncover_budget = 40\n\n"
                 "[log]\nlevel = debug\nsyslog = yes\n\n"
                 "[link]\nhandshake_timeout = 2500\nidle_timeout = 30000\nmax_links = 99\n"
                 "send_queue = 65536\nrekey_cells = 4294967296\nreconnect_min = 200\n"
                 "reconnect_max = 9000\npadding_min = 100\npadding_max = 300\n\n"
                 "[peer.relay-1]\naddress = tcp://10.0.0.1:7001\nid = %s\n"
                 "[peer.dns_name]\naddress = tcp://relay.example.org:443\nid = %s\n",
                 nid, nid);
    fuzz_write_seed(dir, "node-log-link-peers", text, (size_t)n);
    n = snprintf(text, sizeof(text),
                 "[node]\nroles = relay, client\ntransports = tcp, quic\nprefer = quic\n"
                 "listen = quic://0.0.0.0:7443\n\n"
                 "[bootstrap.boot]\naddress = tcp://192.0.2.1:7000\nid = %s\n\n"
                 "[dir]\nheartbeat = 2000\nttl = 6000\nchain_cache_ttl = 60000\nmax_nodes = 100\n"
                 "max_cached_chains = 10\nonion_rotate = 600000\nonion_overlap = 60000\n"
                 "request_timeout = 3000\n\n"
                 "[chain]\nsource = local\ndistinct_subnets = no\nweighting = capacity\n"
                 "length = 4\nbackups = 1\nlifetime = 120000\nsetup_timeout = 5000\n\n"
                 "[client]\nmax_message = 65536\ninbox_messages = 16\ninbox_bytes = 1048576\n"
                 "send_queue = 8\nreassembly_timeout = 10000\nretransmit = 500\n"
                 "deadline = 20000\ncover_interval = 1000\nloop_interval = 5000\n"
                 "constant_rate = 10\n\n"
                 "[relay]\nmax_chains = 100\nsetup_timeout = 3000\nmax_lifetime = 600\n"
                 "exit_queue = 32\ncapacity = 2048\n\n"
                 "[exit]\npolicy = reject 10.0.0.0/8:*, accept [2001:db8::]/32:80-88\n"
                 "policy = accept *4:443, reject *:*\n",
                 nid);
    fuzz_write_seed(dir, "bootstrap-dir-chain-client-relay", text, (size_t)n);
    fuzz_write_seed(dir, "bom-crlf", "\xEF\xBB\xBF[node]\r\nroles = relay\r\n\r\n",
                    strlen("\xEF\xBB\xBF[node]\r\nroles = relay\r\n\r\n"));
    fuzz_write_seed(dir, "bad-line", "[log]\nlevel = loud\n", strlen("[log]\nlevel = loud\n"));
    fuzz_write_seed(dir, "metrics", "[metrics]\nlisten = [::1]:9101\n",
                    strlen("[metrics]\nlisten = [::1]:9101\n"));
    n = snprintf(text, sizeof(text),
                 "[node]\nroles = relay\nrate = 10 MB\nburst = 20MiB\n\n"
                 "[relay]\nrate = 1048576\nburst = 2 mib\nmax_per_day = 100 GB\n"
                 "max_per_month = 2TiB\naccounting_start = 15 04:30\n");
    fuzz_write_seed(dir, "bandwidth", text, (size_t)n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_seeds(seeds);
    cfg = malloc(sizeof(*cfg));
    again = malloc(sizeof(*again));
    if (!cfg || !again)
        abort();
    return 0;
}

static bool str_in(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* What node_init demands of the link options (src/core/node_run.c). */
static bool node_opts_ok(const struct node_opts *o)
{
    return o->aead_suites && o->rekey_cells >= 16 && o->rekey_cells <= (UINT64_C(1) << 32) &&
           (o->rekey_cells & (o->rekey_cells - 1)) == 0 && o->max_links && o->cover_budget <= 100 &&
           !(o->padding_max_ms && o->padding_min_ms > o->padding_max_ms) &&
           o->reconnect_min_ms <= o->reconnect_max_ms;
}

static void check_config(const struct ovl_config *c)
{
    uint8_t enc[DESC_POLICY_MAX];
    struct ovl_uri u;
    size_t len;

    FUZZ_ASSERT(strcmp(c->path, NAME) == 0);
    FUZZ_ASSERT(str_in(c->data_dir, sizeof(c->data_dir)) &&
                str_in(c->control_socket, sizeof(c->control_socket)));
    FUZZ_ASSERT(c->n_listen <= NODE_MAX_LISTEN && c->n_peers <= NODE_MAX_PEERS &&
                c->n_bootstraps <= DIR_MAX_BOOTSTRAPS);
    for (unsigned i = 0; i < c->n_listen; i++)
        FUZZ_ASSERT(str_in(c->listen[i], OVL_URI_MAX) && uri_parse(&u, c->listen[i]) == 0);
    for (unsigned i = 0; i < c->n_peers; i++)
        FUZZ_ASSERT(str_in(c->peers[i].name, PEER_NAME_MAX) && uri_parse(&u, c->peers[i].uri) == 0);
    for (unsigned i = 0; i < c->n_bootstraps; i++)
        FUZZ_ASSERT(str_in(c->bootstraps[i].name, PEER_NAME_MAX) &&
                    uri_parse(&u, c->bootstraps[i].uri) == 0);
    /* The metrics listener's address: none, or an IP literal and a port. */
    FUZZ_ASSERT(str_in(c->metrics_listen, sizeof(c->metrics_listen)));
    if (c->metrics_listen[0]) {
        char uri[OVL_URI_MAX];
        struct sockaddr_storage sa;

        snprintf(uri, sizeof(uri), "tcp://%s", c->metrics_listen);
        FUZZ_ASSERT(uri_parse(&u, uri) == 0 && uri_sockaddr(&u, &sa) == 0);
    }
    FUZZ_ASSERT(node_opts_ok(&c->opts));
    FUZZ_ASSERT(c->dir.exit_policy.n == 0 ||
                ((c->roles & ROLE_RELAY) &&
                 exit_policy_encode(&c->dir.exit_policy, enc, sizeof(enc), &len) == 0));
    FUZZ_ASSERT(config_dial_peers(c, dial) <= NODE_MAX_PEERS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CONFIG_ERR_MAX];
    char *text = malloc(size + 1);
    int rc;

    fuzz_begin();
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    rc = config_parse_string(cfg, NAME, text, err, sizeof(err));
    FUZZ_ASSERT(str_in(err, sizeof(err)));
    if (rc == 0) {
        struct cfg_diff d;

        FUZZ_ASSERT(err[0] == '\0');
        check_config(cfg);
        FUZZ_ASSERT(config_parse_string(again, NAME, text, err, sizeof(err)) == 0);
        cfg_diff(cfg, again, &d);
        FUZZ_ASSERT(d.n_changed == 0 && d.steps == 0);
    } else {
        FUZZ_ASSERT(rc == OVL_EINVAL && strncmp(err, NAME ":", sizeof(NAME)) == 0);
    }
    free(text);
    return 0;
}
