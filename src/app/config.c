/* config.c - ovld's INI configuration (reference: docs/CONFIG.md).
 *
 * libinih splits lines into [sections] and key = value pairs; the meaning of
 * every key is ours. We hand libinih our own line reader instead of a file
 * name so that we always know the physical line number, see every section
 * header as it comes (empty sections included), refuse overlong lines and
 * NUL bytes instead of letting libinih cut them in two, and strip leading
 * blanks so an indented line is never glued to the previous value as a
 * continuation line.
 */
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "ovl_config.h"

#include "app/config.h"
#include "core/transport.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "lib/uri.h"

#define SUN_PATH_MAX  (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define SECT_NAME_MAX 64

/* Plain sections first, then the named ones ([peer.NAME], [bootstrap.NAME]). */
enum cfg_sect {
    SECT_NONE,
    SECT_NODE,
    SECT_LOG,
    SECT_LINK,
    SECT_DIR,
    SECT_CHAIN,
    SECT_CLIENT,
    SECT_RELAY,
    SECT_PEER,
    SECT_BOOTSTRAP
};

struct cfg_parse;
struct key_def;

typedef int (*key_setter)(struct cfg_parse *p, const struct key_def *k, const char *v);

/* One key of one section. Integer and path keys store into struct
 * ovl_config at off/width; a path takes at most max bytes. */
struct key_def {
    enum cfg_sect sect;
    const char *name;
    key_setter set;
    bool repeat;  /* may be given more than once (listen) */
    bool zero_ok; /* 0 is accepted besides min..max (idle_timeout) */
    uint64_t min, max;
    size_t off, width;
};

static int set_roles(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_path(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_listen(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_aead(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_transports(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_level(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_syslog(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_uint(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_pow2(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_peer_address(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_peer_id(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_source(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_subnets(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_weighting(struct cfg_parse *p, const struct key_def *k, const char *v);

#define CFG_FIELD(f) offsetof(struct ovl_config, f), sizeof(((struct ovl_config *)0)->f)
#define OPT_FIELD(f) CFG_FIELD(opts.f)
#define U32_MAX_MS   UINT64_C(86400000)

static const struct key_def key_defs[] = {
    {SECT_NODE, "roles", set_roles, false, false, 0, 0, 0, 0},
    {SECT_NODE, "data_dir", set_path, false, false, 0, PATH_MAX - 1, CFG_FIELD(data_dir)},
    {SECT_NODE, "listen", set_listen, true, false, 0, 0, 0, 0},
    {SECT_NODE, "control_socket", set_path, false, false, 0, SUN_PATH_MAX,
     CFG_FIELD(control_socket)},
    {SECT_NODE, "aead", set_aead, false, false, 0, 0, 0, 0},
    {SECT_NODE, "transports", set_transports, false, false, 0, 0, 0, 0},
    {SECT_NODE, "prefer", set_transports, false, false, 0, 0, 0, 0},
    {SECT_NODE, "cover_budget", set_uint, false, false, 0, 100, OPT_FIELD(cover_budget)},
    {SECT_LOG, "level", set_level, false, false, 0, 0, 0, 0},
    {SECT_LOG, "syslog", set_syslog, false, false, 0, 0, 0, 0},
    {SECT_LINK, "handshake_timeout", set_uint, false, false, 100, 600000,
     OPT_FIELD(handshake_timeout_ms)},
    {SECT_LINK, "idle_timeout", set_uint, false, true, 1000, 86400000, OPT_FIELD(idle_timeout_ms)},
    {SECT_LINK, "heartbeat", set_uint, false, true, 100, 600000, OPT_FIELD(heartbeat_ms)},
    {SECT_LINK, "heartbeat_misses", set_uint, false, false, 1, 1000, OPT_FIELD(heartbeat_misses)},
    {SECT_LINK, "padding_min", set_uint, false, false, 10, 3600000, OPT_FIELD(padding_min_ms)},
    {SECT_LINK, "padding_max", set_uint, false, true, 10, 3600000, OPT_FIELD(padding_max_ms)},
    {SECT_LINK, "max_links", set_uint, false, false, 1, 65536, OPT_FIELD(max_links)},
    {SECT_LINK, "send_queue", set_uint, false, false, 16384, 67108864, OPT_FIELD(sendq_max)},
    {SECT_LINK, "rekey_cells", set_pow2, false, false, 16, UINT64_C(4294967296),
     OPT_FIELD(rekey_cells)},
    {SECT_LINK, "reconnect_min", set_uint, false, false, 100, 600000, OPT_FIELD(reconnect_min_ms)},
    {SECT_LINK, "reconnect_max", set_uint, false, false, 1000, 3600000,
     OPT_FIELD(reconnect_max_ms)},
    {SECT_PEER, "address", set_peer_address, false, false, 0, 0, 0, 0},
    {SECT_PEER, "id", set_peer_id, false, false, 0, 0, 0, 0},
    {SECT_BOOTSTRAP, "address", set_peer_address, false, false, 0, 0, 0, 0},
    {SECT_BOOTSTRAP, "id", set_peer_id, false, false, 0, 0, 0, 0},
    {SECT_DIR, "heartbeat", set_uint, false, false, 1000, 600000, CFG_FIELD(dir.heartbeat_ms)},
    {SECT_DIR, "ttl", set_uint, false, false, 1000, U32_MAX_MS, CFG_FIELD(dir.ttl_ms)},
    {SECT_DIR, "chain_cache_ttl", set_uint, false, false, 1000, U32_MAX_MS,
     CFG_FIELD(dir.chain_cache_ttl_ms)},
    {SECT_DIR, "max_nodes", set_uint, false, false, 1, 1000000, CFG_FIELD(dir.max_nodes)},
    {SECT_DIR, "max_cached_chains", set_uint, false, false, 1, 1000000, CFG_FIELD(dir.max_chains)},
    {SECT_DIR, "onion_rotate", set_uint, false, false, 60000, 604800000,
     CFG_FIELD(dir.onion_rotate_ms)},
    {SECT_DIR, "onion_overlap", set_uint, false, false, 0, U32_MAX_MS,
     CFG_FIELD(dir.onion_overlap_ms)},
    {SECT_DIR, "request_timeout", set_uint, false, false, 100, 600000,
     CFG_FIELD(dir.request_timeout_ms)},
    {SECT_CHAIN, "source", set_source, false, false, 0, 0, 0, 0},
    {SECT_CHAIN, "distinct_subnets", set_subnets, false, false, 0, 0, 0, 0},
    {SECT_CHAIN, "weighting", set_weighting, false, false, 0, 0, 0, 0},
    {SECT_CHAIN, "length", set_uint, false, false, 1, DIR_MAX_HOPS, CFG_FIELD(client.length)},
    {SECT_CHAIN, "backups", set_uint, false, false, 0, DIR_MAX_BACKUPS, CFG_FIELD(client.backups)},
    {SECT_CHAIN, "lifetime", set_uint, false, false, 10000, U32_MAX_MS,
     CFG_FIELD(client.lifetime_ms)},
    {SECT_CHAIN, "setup_timeout", set_uint, false, false, 100, 600000,
     CFG_FIELD(client.setup_timeout_ms)},
    {SECT_CLIENT, "max_message", set_uint, false, false, 1, 67108864,
     CFG_FIELD(client.max_message)},
    {SECT_CLIENT, "inbox_messages", set_uint, false, false, 1, 1000000,
     CFG_FIELD(client.inbox_messages)},
    {SECT_CLIENT, "inbox_bytes", set_uint, false, false, 1024, UINT64_C(4294967296),
     CFG_FIELD(client.inbox_bytes)},
    {SECT_CLIENT, "send_queue", set_uint, false, false, 1, 100000, CFG_FIELD(client.send_queue)},
    {SECT_CLIENT, "reassembly_timeout", set_uint, false, false, 1000, 3600000,
     CFG_FIELD(client.reassembly_timeout_ms)},
    {SECT_CLIENT, "retransmit", set_uint, false, false, 100, 600000,
     CFG_FIELD(client.retransmit_ms)},
    {SECT_CLIENT, "deadline", set_uint, false, false, 1000, 3600000, CFG_FIELD(client.deadline_ms)},
    {SECT_CLIENT, "cover_interval", set_uint, false, true, 10, 3600000,
     CFG_FIELD(client.cover_interval_ms)},
    {SECT_CLIENT, "loop_interval", set_uint, false, true, 10, 3600000,
     CFG_FIELD(client.loop_interval_ms)},
    {SECT_CLIENT, "constant_rate", set_uint, false, true, 1, 10000,
     CFG_FIELD(client.constant_rate)},
    {SECT_RELAY, "max_chains", set_uint, false, false, 1, 10000000, CFG_FIELD(relay.max_chains)},
    {SECT_RELAY, "setup_timeout", set_uint, false, false, 100, 600000,
     CFG_FIELD(relay.setup_timeout_ms)},
    {SECT_RELAY, "max_lifetime", set_uint, false, false, 10, 86400,
     CFG_FIELD(relay.max_lifetime_s)},
    {SECT_RELAY, "exit_queue", set_uint, false, false, 1, 65536, CFG_FIELD(relay.exit_queue)},
    {SECT_RELAY, "capacity", set_uint, false, false, 0, 10000000, CFG_FIELD(dir.capacity_kib)},
};

#define KEY_COUNT (sizeof(key_defs) / sizeof(key_defs[0]))

/* State of one parse, shared by the line reader and the key handler. */
struct cfg_parse {
    struct ovl_config *c;
    FILE *fp;         /* the source is either a file ... */
    const char *text; /* ... or a string */
    size_t pos;
    unsigned line; /* physical line last handed to libinih (libinih counts alike) */
    enum cfg_sect sect;
    char sect_name[SECT_NAME_MAX];
    unsigned peer;                      /* index in c->peers or c->bootstraps (named sections) */
    unsigned key_line[KEY_COUNT];       /* line where a key of a plain section was set */
    unsigned peer_line[NODE_MAX_PEERS]; /* line of each [peer.NAME] header */
    unsigned peer_key_line[NODE_MAX_PEERS][KEY_COUNT];
    unsigned boot_line[DIR_MAX_BOOTSTRAPS]; /* line of each [bootstrap.NAME] header */
    unsigned boot_key_line[DIR_MAX_BOOTSTRAPS][KEY_COUNT];
    unsigned listen_line[NODE_MAX_LISTEN]; /* line of each listen value */
    unsigned listen_any;                   /* bit i: listen[i] named no transport */
    bool colon;                            /* the current line's first separator is ':' */
    bool failed;
    unsigned err_line;
    char msg[CONFIG_ERR_MAX];
};

static const char *const sect_names[] = {"",      "node",   "log",   "link", "dir",
                                         "chain", "client", "relay", "peer", "bootstrap"};

__attribute__((format(printf, 3, 4))) static int cfg_fail(struct cfg_parse *p, unsigned line,
                                                          const char *fmt, ...)
{
    /* Only the first error is reported: later ones are often its echoes. */
    if (p->failed)
        return OVL_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    p->failed = true;
    p->err_line = line;
    return OVL_EINVAL;
}

/* Copy v into dst (size bytes) or fail: a value is never silently cut. */
static int copy_value(struct cfg_parse *p, const struct key_def *k, char *dst, size_t size,
                      const char *v)
{
    size_t n = strlen(v);
    if (n >= size)
        return cfg_fail(p, p->line, "value of %s is too long (%zu bytes, at most %zu)", k->name, n,
                        size - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_roles(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    static const struct {
        const char *name;
        unsigned bit;
    } roles[] = {{"bootstrap", ROLE_BOOTSTRAP}, {"relay", ROLE_RELAY}, {"client", ROLE_CLIENT}};
    unsigned mask = 0;
    const char *s = v;

    (void)k;
    if (*v == '\0')
        return cfg_fail(p, p->line, "roles is empty (expected bootstrap, relay and/or client)");
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0)
            return cfg_fail(p, p->line, "empty role name in roles '%s'", v);
        size_t i;
        for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
            if (strlen(roles[i].name) == n && memcmp(roles[i].name, s, n) == 0)
                break;
        }
        if (i == sizeof(roles) / sizeof(roles[0]))
            return cfg_fail(p, p->line, "unknown role '%.*s' (expected bootstrap, relay or client)",
                            (int)n, s);
        mask |= roles[i].bit;
        if (!comma)
            break;
        s = comma + 1;
    }
    p->c->roles = mask;
    return 0;
}

static int set_path(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    if (*v == '\0')
        return cfg_fail(p, p->line, "%s is empty", k->name);
    /* k->max may be below the buffer size: the socket path must fit sun_path. */
    size_t size = k->max + 1 < k->width ? k->max + 1 : k->width;
    return copy_value(p, k, (char *)p->c + k->off, size, v);
}

/* Parse an address and check its transport is compiled in. */
static int parse_address(struct cfg_parse *p, const struct key_def *k, const char *v,
                         struct ovl_uri *u)
{
    if (strlen(v) >= OVL_URI_MAX)
        return cfg_fail(p, p->line, "value of %s is too long (at most %d bytes)", k->name,
                        OVL_URI_MAX - 1);
    if (uri_parse(u, v) != 0)
        return cfg_fail(p, p->line, "bad %s '%s' (expected scheme://host:port)", k->name, v);
    if (!tp_lookup(u->scheme))
        return cfg_fail(p, p->line, "unknown transport '%s' in %s '%s' (this build has: %s)",
                        u->scheme, k->name, v, tp_names());
    return 0;
}

static int set_listen(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct ovl_config *c = p->c;
    struct ovl_uri u;
    char any[OVL_URI_MAX + 8];
    int err;

    if (c->n_listen >= NODE_MAX_LISTEN)
        return cfg_fail(p, p->line, "too many listen addresses (at most %d)", NODE_MAX_LISTEN);
    p->listen_line[c->n_listen] = p->line;
    if (!strstr(v, "://")) {
        /* HOST:PORT alone: every transport in use, expanded in cfg_finish. */
        snprintf(any, sizeof(any), "tcp://%s", v);
        if (strlen(any) >= OVL_URI_MAX - 2 || uri_parse(&u, any) != 0)
            return cfg_fail(p, p->line, "bad listen '%s' (expected [scheme://]host:port)", v);
        p->listen_any |= 1u << c->n_listen;
    } else if ((err = parse_address(p, k, v, &u)) != 0) {
        return err;
    }
    if (!u.is_literal)
        return cfg_fail(p, p->line, "listen address '%s' must use an IP literal, not a host name",
                        v);
    err = copy_value(p, k, c->listen[c->n_listen], sizeof(c->listen[0]), v);
    if (err)
        return err;
    c->n_listen++;
    return 0;
}

static int set_aead(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    uint32_t mask;
    int err = ovl_aead_parse(v, &mask);

    (void)k;
    if (err == OVL_EUNSUPP)
        return cfg_fail(p, p->line, "%s is not available on this CPU", v);
    if (err)
        return cfg_fail(p, p->line,
                        "unknown aead '%s' (expected auto, aes256gcm or chacha20poly1305)", v);
    p->c->opts.aead_suites = mask;
    return 0;
}

static int set_level(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    (void)k;
    if (log_level_parse(v, &p->c->log_level) != 0)
        return cfg_fail(p, p->line, "unknown log level '%s' (expected error, warn, info or debug)",
                        v);
    return 0;
}

/* Parse a boolean (true/yes/1, false/no/0) into *out. */
static int parse_bool(struct cfg_parse *p, const struct key_def *k, const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return cfg_fail(p, p->line,
                        "bad boolean '%s' for %s (expected true, false, yes, no, 1 or 0)", v,
                        k->name);
    return 0;
}

/* One rule for both chain generators: the bootstrap's and the local one. */
static int set_subnets(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    int rc = parse_bool(p, k, v, &p->c->client.distinct_subnets);

    p->c->dir.distinct_subnets = p->c->client.distinct_subnets;
    return rc;
}

/* Like distinct_subnets: the bootstrap's generator and the local choice. */
static int set_weighting(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    bool cap = strcmp(v, "capacity") == 0;

    if (!cap && strcmp(v, "uniform") != 0)
        return cfg_fail(p, p->line, "unknown %s '%s' (expected uniform or capacity)", k->name, v);
    p->c->client.by_capacity = p->c->dir.by_capacity = cap;
    return 0;
}

static int set_syslog(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    return parse_bool(p, k, v, &p->c->syslog);
}

/* Parse digits only: strtoull alone would take blanks, a sign or a suffix. */
static int parse_decimal(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return OVL_EINVAL;
    for (const char *q = s; *q; q++) {
        if (*q < '0' || *q > '9')
            return OVL_EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return OVL_EINVAL;
    *out = (uint64_t)v;
    return 0;
}

static int set_uint(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    uint64_t n;

    if (parse_decimal(v, &n) != 0)
        return cfg_fail(p, p->line, "bad number '%s' for %s (expected a plain decimal integer)", v,
                        k->name);
    if ((n < k->min || n > k->max) && !(k->zero_ok && n == 0))
        return cfg_fail(p, p->line, "%s = %s is out of range (%s%" PRIu64 "..%" PRIu64 ")", k->name,
                        v, k->zero_ok ? "0 or " : "", k->min, k->max);
    char *field = (char *)p->c + k->off;
    if (k->width == sizeof(uint32_t)) {
        uint32_t n32 = (uint32_t)n;
        memcpy(field, &n32, sizeof(n32));
    } else {
        memcpy(field, &n, sizeof(n));
    }
    return 0;
}

/* An integer as set_uint that must also be a power of two (it is sent as log2). */
static int set_pow2(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    uint64_t n;
    int err = set_uint(p, k, v);

    if (err)
        return err;
    memcpy(&n, (char *)p->c + k->off, sizeof(n));
    if ((n & (n - 1)) != 0)
        return cfg_fail(p, p->line, "%s = %s is not a power of two", k->name, v);
    return 0;
}

/* The name, address and key of the [peer.NAME] or [bootstrap.NAME] being read. */
struct named_spec {
    const char *kind; /* "peer" or "bootstrap", for messages */
    const char *name;
    char *uri;
    uint8_t *pk;
};

static struct named_spec cur_spec(struct cfg_parse *p)
{
    if (p->sect == SECT_BOOTSTRAP) {
        struct dir_bootstrap_spec *bs = &p->c->bootstraps[p->peer];
        return (struct named_spec){"bootstrap", bs->name, bs->uri, bs->pk};
    }
    struct peer_spec *ps = &p->c->peers[p->peer];
    return (struct named_spec){"peer", ps->name, ps->uri, ps->pk};
}

static int set_peer_address(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct named_spec ns = cur_spec(p);
    struct ovl_uri u;
    int err = parse_address(p, k, v, &u);

    if (err)
        return err;
    if (u.port == 0)
        return cfg_fail(p, p->line, "%s %s: address '%s' needs a port from 1 to 65535", ns.kind,
                        ns.name, v);
    return copy_value(p, k, ns.uri, OVL_URI_MAX, v);
}

static int set_peer_id(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct named_spec ns = cur_spec(p);

    (void)k;
    if (node_id_parse(ns.pk, v) != 0)
        return cfg_fail(p, p->line,
                        "%s %s: bad id '%s' (expected %d characters, as ovld --print-id prints)",
                        ns.kind, ns.name, v, OVL_NODE_ID_LEN);
    return 0;
}

static int set_source(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    if (strcmp(v, "bootstrap") == 0)
        p->c->client.source = CHAIN_SOURCE_BOOTSTRAP;
    else if (strcmp(v, "local") == 0)
        p->c->client.source = CHAIN_SOURCE_LOCAL;
    else
        return cfg_fail(p, p->line, "unknown %s '%s' (expected bootstrap or local)", k->name, v);
    return 0;
}

static bool peer_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= PEER_NAME_MAX)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Start a [peer.NAME] (sect SECT_PEER) or [bootstrap.NAME] section. */
static void cfg_named_begin(struct cfg_parse *p, enum cfg_sect sect, const char *name)
{
    struct ovl_config *c = p->c;
    bool boot = sect == SECT_BOOTSTRAP;
    const char *kind = boot ? "bootstrap" : "peer";
    unsigned *count = boot ? &c->n_bootstraps : &c->n_peers;
    unsigned max = boot ? DIR_MAX_BOOTSTRAPS : NODE_MAX_PEERS;
    unsigned *lines = boot ? p->boot_line : p->peer_line;

    if (!peer_name_ok(name)) {
        cfg_fail(p, p->line, "bad %s name '%s' in [%s.%s] (1 to %d of A-Z a-z 0-9 _ -)", kind, name,
                 kind, name, PEER_NAME_MAX - 1);
        return;
    }
    for (unsigned i = 0; i < *count; i++) {
        const char *other = boot ? c->bootstraps[i].name : c->peers[i].name;
        if (strcmp(other, name) == 0) {
            cfg_fail(p, p->line, "section [%s.%s] given twice (first on line %u)", kind, name,
                     lines[i]);
            return;
        }
    }
    if (*count >= max) {
        cfg_fail(p, p->line, "too many %ss (at most %u)", kind, max);
        return;
    }
    p->peer = (*count)++;
    memcpy(boot ? c->bootstraps[p->peer].name : c->peers[p->peer].name, name, strlen(name) + 1);
    lines[p->peer] = p->line;
    p->sect = sect;
}

/* Called by the reader for a line starting with '['; libinih reports the
 * line itself as a syntax error when it has no ']'. */
static void cfg_section(struct cfg_parse *p, const char *line)
{
    const char *close = strchr(line, ']');
    if (!close)
        return;
    size_t n = (size_t)(close - line - 1);
    const char *rest = close + 1;
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
        rest++;
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        cfg_fail(p, p->line, "unexpected text after [%.*s]", (int)n, line + 1);
        return;
    }
    if (n >= sizeof(p->sect_name)) {
        cfg_fail(p, p->line, "unknown section [%.*s...]", 32, line + 1);
        return;
    }
    memcpy(p->sect_name, line + 1, n);
    p->sect_name[n] = '\0';
    p->sect = SECT_NONE;
    for (int s = SECT_NODE; s < SECT_PEER; s++) {
        if (strcmp(p->sect_name, sect_names[s]) == 0) {
            p->sect = (enum cfg_sect)s;
            return;
        }
    }
    if (strncmp(p->sect_name, "peer.", 5) == 0) {
        cfg_named_begin(p, SECT_PEER, p->sect_name + 5);
        return;
    }
    if (strncmp(p->sect_name, "bootstrap.", 10) == 0) {
        cfg_named_begin(p, SECT_BOOTSTRAP, p->sect_name + 10);
        return;
    }
    cfg_fail(p, p->line, "unknown section [%s]", p->sect_name);
}

static int src_getc(struct cfg_parse *p)
{
    if (p->fp)
        return getc(p->fp);
    if (p->text[p->pos] == '\0')
        return EOF;
    return (unsigned char)p->text[p->pos++];
}

/* libinih's fgets-style reader: one physical line per call, so libinih's
 * line count and ours agree. Stops the parse once an error is recorded. */
static char *cfg_reader(char *buf, int num, void *stream)
{
    struct cfg_parse *p = stream;
    size_t cap, len = 0;
    bool any = false, too_long = false, nul = false;
    int ch;

    if (p->failed || num < 3)
        return NULL;
    cap = (size_t)num - 2; /* room for '\n' and the NUL */
    while ((ch = src_getc(p)) != EOF) {
        any = true;
        if (ch == '\n')
            break;
        if (ch == '\0')
            nul = true;
        else if (len < cap)
            buf[len++] = (char)ch;
        else
            too_long = true;
    }
    if (p->fp && ferror(p->fp)) {
        cfg_fail(p, p->line + 1, "cannot read: %s", strerror(errno));
        return NULL;
    }
    if (!any)
        return NULL;
    p->line++;
    if (too_long || nul) {
        if (too_long)
            cfg_fail(p, p->line, "line too long (at most %zu bytes)", cap);
        else
            cfg_fail(p, p->line, "NUL byte in line");
        return NULL;
    }
    buf[len] = '\0';
    /* Drop a UTF-8 byte order mark ourselves so that a header on line 1 is seen. */
    size_t skip = 0;
    if (p->line == 1 && len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    while (skip < len && (buf[skip] == ' ' || buf[skip] == '\t'))
        skip++;
    len -= skip;
    memmove(buf, buf + skip, len);
    buf[len++] = '\n';
    buf[len] = '\0';
    if (buf[0] == '[')
        cfg_section(p, buf);
    /* libinih also splits at ':', which would turn "  tcp://host:1" into a key. */
    p->colon = buf[strcspn(buf, "=:")] == ':';
    return buf;
}

static const struct key_def *key_find(enum cfg_sect sect, const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (key_defs[i].sect == sect && strcmp(key_defs[i].name, name) == 0)
            return &key_defs[i];
    }
    return NULL;
}

/* libinih's callback for each key = value; returns 0 on error as it expects. */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_parse *p = user;

    (void)section; /* the reader tracked it, with its line */
    if (!name)
        return 1; /* a section-start call, if libinih was built to make them */
    if (p->failed)
        return 0;
    if (!value || p->colon)
        return !cfg_fail(p, p->line, "syntax error (expected key = value)");
    if (p->sect == SECT_NONE)
        return !cfg_fail(p, p->line, "key '%s' outside any section", name);
    const struct key_def *k = key_find(p->sect, name);
    if (!k)
        return !cfg_fail(p, p->line, "unknown key '%s' in [%s]", name, p->sect_name);
    size_t i = (size_t)(k - key_defs);
    unsigned *seen = p->sect == SECT_PEER        ? &p->peer_key_line[p->peer][i]
                     : p->sect == SECT_BOOTSTRAP ? &p->boot_key_line[p->peer][i]
                                                 : &p->key_line[i];
    if (*seen && !k->repeat)
        return !cfg_fail(p, p->line, "duplicate key '%s' in [%s] (first on line %u)", name,
                         p->sect_name, *seen);
    *seen = p->line;
    return k->set(p, k, value) == 0;
}

/* Merge [peer.NAME] and the [bootstrap.NAME] not already a peer (same id)
 * into out, writing at most cap entries; return how many there are in all. */
static unsigned dial_merge(const struct ovl_config *c, struct peer_spec *out, unsigned cap)
{
    unsigned n = 0;

    for (unsigned i = 0; i < c->n_peers; i++, n++) {
        if (n < cap)
            out[n] = c->peers[i];
    }
    for (unsigned i = 0; i < c->n_bootstraps; i++) {
        const struct dir_bootstrap_spec *bs = &c->bootstraps[i];
        bool known = false;
        for (unsigned j = 0; j < c->n_peers && !known; j++)
            known = memcmp(c->peers[j].pk, bs->pk, OVL_ED25519_PK) == 0;
        if (known)
            continue;
        if (n < cap) {
            memset(&out[n], 0, sizeof(out[n]));
            memcpy(out[n].name, bs->name, sizeof(out[n].name));
            memcpy(out[n].uri, bs->uri, sizeof(out[n].uri));
            memcpy(out[n].pk, bs->pk, sizeof(out[n].pk));
        }
        n++;
    }
    return n;
}

/* Write the peers to dial (peers, then bootstraps not among them) into out. */
unsigned config_dial_peers(const struct ovl_config *c, struct peer_spec *out)
{
    unsigned n;

    if (!c || !out)
        return 0;
    n = dial_merge(c, out, NODE_MAX_PEERS);
    return n < NODE_MAX_PEERS ? n : NODE_MAX_PEERS;
}

/* Fail unless each of the count named sections of kind sect has address and id. */
static bool cfg_named_complete(struct cfg_parse *p, enum cfg_sect sect, unsigned count)
{
    size_t addr = (size_t)(key_find(sect, "address") - key_defs);
    size_t id = (size_t)(key_find(sect, "id") - key_defs);
    bool boot = sect == SECT_BOOTSTRAP;

    for (unsigned i = 0; i < count; i++) {
        const unsigned *seen = boot ? p->boot_key_line[i] : p->peer_key_line[i];
        const char *missing = !seen[addr] ? "address" : !seen[id] ? "id" : NULL;
        if (missing) {
            cfg_fail(p, boot ? p->boot_line[i] : p->peer_line[i], "%s %s has no %s",
                     boot ? "bootstrap" : "peer",
                     boot ? p->c->bootstraps[i].name : p->c->peers[i].name, missing);
            return false;
        }
    }
    return true;
}

/* The larger of the lines where two plain keys were set (0 if neither was). */
static unsigned later_line(const struct cfg_parse *p, enum cfg_sect sect, const char *a,
                           const char *b)
{
    unsigned la = p->key_line[key_find(sect, a) - key_defs];
    unsigned lb = p->key_line[key_find(sect, b) - key_defs];
    return la > lb ? la : lb;
}

/* The known transports, compiled in or not. */
static const char *const tp_known[] = {"tcp", "quic"};

/* transports = LIST and prefer = NAME: masks of tp_bit(). */
static int set_transports(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    bool list = strcmp(k->name, "transports") == 0;
    unsigned mask = 0;
    char item[16];

    for (const char *s = v;; s++) {
        size_t len = strcspn(s, ",");
        unsigned bit = 0;

        snprintf(item, sizeof(item), "%.*s", (int)(len < sizeof(item) ? len : sizeof(item) - 1), s);
        for (size_t i = 0; i < sizeof(tp_known) / sizeof(tp_known[0]) && len < sizeof(item); i++)
            if (strcmp(item, tp_known[i]) == 0 && !(bit = tp_bit(item)))
                return cfg_fail(p, p->line, "%s is not compiled into this ovld (it has: %s)", item,
                                tp_names());
        if (!bit)
            return cfg_fail(p, p->line, "unknown transport '%.*s' in %s (expected %s)", (int)len, s,
                            k->name, list ? "a list of tcp and quic" : "tcp or quic");
        mask |= bit;
        s += len;
        if (*s != ',')
            break;
        if (!list)
            return cfg_fail(p, p->line, "prefer names one transport");
    }
    if (list)
        p->c->opts.transports = mask;
    else
        p->c->opts.prefer = mask;
    return 0;
}

/* The scheme whose tp_bit() is bit. */
static const char *tp_scheme(unsigned bit)
{
    for (size_t i = 0; i < sizeof(tp_known) / sizeof(tp_known[0]); i++)
        if (tp_bit(tp_known[i]) == bit)
            return tp_known[i];
    return "?";
}

/* Fail unless uri's transport is among use. */
static bool cfg_tp_used(struct cfg_parse *p, unsigned line, const char *what, const char *uri,
                        unsigned use)
{
    struct ovl_uri u;

    if (uri_parse(&u, uri) == 0 && (tp_bit(u.scheme) & use))
        return true;
    cfg_fail(p, line, "%s '%s' uses %s, which transports leaves out", what, uri, u.scheme);
    return false;
}

/* Settle transports and prefer, expand scheme-less listen values, and
 * check that every address uses a transport in use. */
static bool cfg_transports(struct cfg_parse *p)
{
    struct ovl_config *c = p->c;
    unsigned use = c->opts.transports ? c->opts.transports : tp_all_bits();
    unsigned line = later_line(p, SECT_NODE, "transports", "prefer");
    char raw[NODE_MAX_LISTEN][OVL_URI_MAX];
    unsigned n = c->n_listen, i, b;

    if (!c->opts.prefer)
        c->opts.prefer = (tp_bit("tcp") & use) ? tp_bit("tcp") : (use & -use);
    if (!(c->opts.prefer & use))
        return !cfg_fail(p, line, "prefer = %s is not among transports", tp_scheme(c->opts.prefer));
    c->opts.transports = use;
    memcpy(raw, c->listen, sizeof(raw));
    c->n_listen = 0;
    for (i = 0; i < n; i++) {
        bool any = p->listen_any & (1u << i);

        for (b = 1; b <= use; b <<= 1) {
            char *dst;

            if (any ? !(b & use) : b != 1)
                continue; /* an explicit URI is copied once */
            if (c->n_listen == NODE_MAX_LISTEN)
                return !cfg_fail(p, p->listen_line[i], "too many listen addresses (at most %d)",
                                 NODE_MAX_LISTEN);
            dst = c->listen[c->n_listen++];
            if (any)
                snprintf(dst, OVL_URI_MAX, "%s://%.*s", tp_scheme(b), OVL_URI_MAX - 8, raw[i]);
            else
                memcpy(dst, raw[i], OVL_URI_MAX);
            if (!cfg_tp_used(p, p->listen_line[i], "listen", dst, use))
                return false;
        }
    }
    for (i = 0; i < c->n_peers; i++)
        if (!cfg_tp_used(p, p->peer_line[i], "peer address", c->peers[i].uri, use))
            return false;
    for (i = 0; i < c->n_bootstraps; i++)
        if (!cfg_tp_used(p, p->boot_line[i], "bootstrap address", c->bootstraps[i].uri, use))
            return false;
    return true;
}

/* Checks that need the whole file: required peer keys, cross-key limits. */
static void cfg_finish(struct cfg_parse *p)
{
    struct ovl_config *c = p->c;
    unsigned dial;

    if (!cfg_named_complete(p, SECT_PEER, c->n_peers) ||
        !cfg_named_complete(p, SECT_BOOTSTRAP, c->n_bootstraps))
        return;
    for (unsigned i = 0; i < c->n_bootstraps; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (memcmp(c->bootstraps[i].pk, c->bootstraps[j].pk, OVL_ED25519_PK) == 0) {
                cfg_fail(p, p->boot_line[i], "bootstrap %s has the same id as bootstrap %s",
                         c->bootstraps[i].name, c->bootstraps[j].name);
                return;
            }
        }
    }
    dial = dial_merge(c, NULL, 0);
    if (dial > NODE_MAX_PEERS) {
        cfg_fail(p, p->boot_line[c->n_bootstraps - 1],
                 "too many nodes to dial: %u [peer.NAME] and %u [bootstrap.NAME] (at most %d)",
                 c->n_peers, dial - c->n_peers, NODE_MAX_PEERS);
        return;
    }
    if (!cfg_transports(p))
        return;
    c->dir.desc_lifetime_ms = 3 * c->dir.onion_rotate_ms;
    if (c->dir.ttl_ms <= c->dir.heartbeat_ms) {
        cfg_fail(p, later_line(p, SECT_DIR, "ttl", "heartbeat"),
                 "ttl (%" PRIu32 ") must be greater than heartbeat (%" PRIu32 ")", c->dir.ttl_ms,
                 c->dir.heartbeat_ms);
        return;
    }
    if (c->client.deadline_ms >= c->client.reassembly_timeout_ms) {
        cfg_fail(p, later_line(p, SECT_CLIENT, "deadline", "reassembly_timeout"),
                 "deadline (%" PRIu32 ") must be below reassembly_timeout (%" PRIu32 ")",
                 c->client.deadline_ms, c->client.reassembly_timeout_ms);
        return;
    }
    if (c->opts.padding_max_ms && c->opts.padding_max_ms < c->opts.padding_min_ms) {
        cfg_fail(p, later_line(p, SECT_LINK, "padding_min", "padding_max"),
                 "padding_max (%" PRIu32 ") is below padding_min (%" PRIu32 ")",
                 c->opts.padding_max_ms, c->opts.padding_min_ms);
        return;
    }
    if (c->opts.reconnect_max_ms < c->opts.reconnect_min_ms) {
        cfg_fail(p, later_line(p, SECT_LINK, "reconnect_min", "reconnect_max"),
                 "reconnect_max (%" PRIu32 ") is below reconnect_min (%" PRIu32 ")",
                 c->opts.reconnect_max_ms, c->opts.reconnect_min_ms);
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Run libinih over p's source and turn the outcome into one error message. */
static int cfg_run(struct cfg_parse *p, const char *name, char *err, size_t errlen)
{
    int rc = ini_parse_stream(cfg_reader, p, cfg_handler, p);

    if (rc == -2) {
        set_err(err, errlen, "%s: out of memory", name);
        return OVL_ENOMEM;
    }
    /* A line libinih rejected on its own never reached our handler. */
    if (rc > 0 && (!p->failed || (unsigned)rc < p->err_line)) {
        p->failed = false;
        cfg_fail(p, (unsigned)rc, "syntax error (expected [section] or key = value)");
    }
    if (!p->failed)
        cfg_finish(p);
    if (p->failed) {
        set_err(err, errlen, "%s:%u: %s", name, p->err_line, p->msg);
        return OVL_EINVAL;
    }
    set_err(err, errlen, "%s", "");
    return 0;
}

/* Fill c with the documented defaults (no peers, no listen address). */
void config_defaults(struct ovl_config *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof(*c));
    c->roles = ROLE_RELAY;
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", OVL_DEFAULT_DATA_DIR);
    snprintf(c->control_socket, sizeof(c->control_socket), "%s", OVL_DEFAULT_SOCKET);
    c->log_level = OVL_LOG_INFO;
    c->syslog = false;
    node_opts_defaults(&c->opts);
    dir_opts_defaults(&c->dir);
    relay_opts_defaults(&c->relay);
    client_opts_defaults(&c->client);
}

/* Set c to the defaults and remember name; fail if name does not fit. */
static int cfg_start(struct ovl_config *c, struct cfg_parse *p, const char *name, char *err,
                     size_t errlen)
{
    if (!c || !name) {
        set_err(err, errlen, "config: no file given");
        return OVL_EINVAL;
    }
    config_defaults(c);
    if (strlen(name) >= sizeof(c->path)) {
        set_err(err, errlen, "%.64s...: path too long", name);
        return OVL_EINVAL;
    }
    memcpy(c->path, name, strlen(name) + 1);
    memset(p, 0, sizeof(*p));
    p->c = c;
    return 0;
}

/* Read path into c, defaults first; see config.h for the errors. */
int config_load(struct ovl_config *c, const char *path, char *err, size_t errlen)
{
    struct cfg_parse p;
    int rc = cfg_start(c, &p, path, err, errlen);

    if (rc)
        return rc;
    p.fp = fopen(path, "r");
    if (!p.fp) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return OVL_ENOENT;
    }
    rc = cfg_run(&p, path, err, errlen);
    fclose(p.fp);
    return rc;
}

/* Parse a config held in memory; name stands for the file in messages. */
int config_parse_string(struct ovl_config *c, const char *name, const char *text, char *err,
                        size_t errlen)
{
    struct cfg_parse p;
    int rc = cfg_start(c, &p, name, err, errlen);

    if (rc)
        return rc;
    if (!text) {
        set_err(err, errlen, "%s: no text", name);
        return OVL_EINVAL;
    }
    p.text = text;
    return cfg_run(&p, name, err, errlen);
}
