/* config_keys.c - what each key of ovld's configuration means: the table
 * of keys (cfg_keys[]) and the setters that check and store their values
 * (reference: docs/CONFIG.md). The reader around them is config.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "app/config_int.h"
#include "core/transport.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "lib/uri.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Copy v into dst (size bytes) or fail: a value is never silently cut. */
static int copy_value(struct cfg_parse *p, char *dst, size_t size, const char *v)
{
    size_t n = strlen(v);
    if (n >= size)
        return cfg_fail(p, p->line, "value of %s is too long (%zu bytes, at most %zu)", p->key, n,
                        size - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_roles(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    static const struct {
        const char *name;
        unsigned bit;
    } roles[] = {
        {.name = "bootstrap", .bit = ROLE_BOOTSTRAP},
        {.name = "relay", .bit = ROLE_RELAY},
        {.name = "client", .bit = ROLE_CLIENT},
    };
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

/* The largest value of key k. */
static uint64_t key_max(const struct key_def *k)
{
    return (uint64_t)k->max << k->max_shift;
}

static int set_path(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    if (*v == '\0')
        return cfg_fail(p, p->line, "%s is empty", p->key);
    /* k->max may be below the buffer size: the socket path must fit sun_path. */
    size_t size = k->max + 1u < k->width ? k->max + 1u : k->width;
    return copy_value(p, (char *)p->c + k->off, size, v);
}

/* Parse an address and check its transport is compiled in. */
static int parse_address(struct cfg_parse *p, const char *v, struct ovl_uri *u)
{
    if (strlen(v) >= OVL_URI_MAX)
        return cfg_fail(p, p->line, "value of %s is too long (at most %d bytes)", p->key,
                        OVL_URI_MAX - 1);
    if (uri_parse(u, v) != 0)
        return cfg_fail(p, p->line, "bad %s '%s' (expected scheme://host:port)", p->key, v);
    if (!tp_lookup(u->scheme))
        return cfg_fail(p, p->line, "unknown transport '%s' in %s '%s' (this build has: %s)",
                        u->scheme, p->key, v, tp_names());
    return 0;
}

static int set_listen(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct ovl_config *c = p->c;
    struct ovl_uri u;
    char any[OVL_URI_MAX + 8];
    int err;

    (void)k;
    if (c->n_listen >= NODE_MAX_LISTEN)
        return cfg_fail(p, p->line, "too many listen addresses (at most %d)", NODE_MAX_LISTEN);
    p->listen_line[c->n_listen] = p->line;
    if (!strstr(v, "://")) {
        /* HOST:PORT alone: every transport in use, expanded in cfg_finish. */
        snprintf(any, sizeof(any), "tcp://%s", v);
        if (strlen(any) >= OVL_URI_MAX - 2 || uri_parse(&u, any) != 0)
            return cfg_fail(p, p->line, "bad listen '%s' (expected [scheme://]host:port)", v);
        p->listen_any |= 1u << c->n_listen;
    } else if ((err = parse_address(p, v, &u)) != 0) {
        return err;
    }
    if (!u.is_literal)
        return cfg_fail(p, p->line, "listen address '%s' must use an IP literal, not a host name",
                        v);
    err = copy_value(p, c->listen[c->n_listen], sizeof(c->listen[0]), v);
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
static int parse_bool(struct cfg_parse *p, const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return cfg_fail(p, p->line,
                        "bad boolean '%s' for %s (expected true, false, yes, no, 1 or 0)", v,
                        p->key);
    return 0;
}

/* One rule for both chain generators: the bootstrap's and the local one. */
static int set_subnets(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    int rc = parse_bool(p, v, &p->c->client.distinct_subnets);

    (void)k;
    p->c->dir.distinct_subnets = p->c->client.distinct_subnets;
    return rc;
}

/* Like distinct_subnets: the bootstrap's generator and the local choice. */
static int set_weighting(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    bool cap = strcmp(v, "capacity") == 0;

    (void)k;
    if (!cap && strcmp(v, "uniform") != 0)
        return cfg_fail(p, p->line, "unknown %s '%s' (expected uniform or capacity)", p->key, v);
    p->c->client.by_capacity = p->c->dir.by_capacity = cap;
    return 0;
}

static int set_syslog(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    (void)k;
    return parse_bool(p, v, &p->c->syslog);
}

/* A boolean stored at the key's field. */
static int set_bool(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    return parse_bool(p, v, (bool *)((char *)p->c + k->off));
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
                        p->key);
    if ((n < k->min || n > key_max(k)) && !(k->zero_ok && n == 0))
        return cfg_fail(p, p->line, "%s = %s is out of range (%s%" PRIu64 "..%" PRIu64 ")", p->key,
                        v, k->zero_ok ? "0 or " : "", (uint64_t)k->min, key_max(k));
    char *field = (char *)p->c + k->off;
    if (k->width == sizeof(uint32_t)) {
        uint32_t n32 = (uint32_t)n;
        memcpy(field, &n32, sizeof(n32));
    } else {
        memcpy(field, &n, sizeof(n));
    }
    return 0;
}

/* A number of bytes: digits, then optionally blanks and a unit, any case:
 * B; K, KB, M, MB, G, GB, T, TB (powers of 1000); KiB, MiB, GiB, TiB
 * (powers of 1024). OVL_EINVAL for anything else or more than 2^64 - 1. */
static int parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "kmgt";
    const char *u = s + strspn(s, "0123456789"), *pos;
    char num[24];
    uint64_t n, mul = 1, base = 1000;
    size_t digits = (size_t)(u - s);

    if (digits == 0 || digits >= sizeof(num))
        return OVL_EINVAL;
    memcpy(num, s, digits);
    num[digits] = '\0';
    if (parse_decimal(num, &n) != 0)
        return OVL_EINVAL;
    u += strspn(u, " \t");
    if (*u && (pos = strchr(units, u[0] | 0x20)) != NULL) {
        u++;
        if ((u[0] | 0x20) == 'i') {
            base = 1024;
            u++;
            if ((u[0] | 0x20) != 'b')
                return OVL_EINVAL; /* KiB, never Ki */
        }
        for (const char *q = units; q <= pos; q++)
            mul *= base;
    }
    if ((u[0] | 0x20) == 'b')
        u++;
    if (*u != '\0' || (n && mul > UINT64_MAX / n))
        return OVL_EINVAL;
    *out = n * mul;
    return 0;
}

/* A number of bytes (parse_size) within the key's bounds, stored as set_uint. */
static int set_size(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    char digits[24];
    uint64_t n;

    if (parse_size(v, &n) != 0)
        return cfg_fail(p, p->line,
                        "bad size '%s' for %s (expected bytes, or a number with B, KB, MB, GB, TB, "
                        "KiB, MiB, GiB or TiB)",
                        v, p->key);
    if ((n < k->min || n > key_max(k)) && !(k->zero_ok && n == 0))
        return cfg_fail(p, p->line, "%s = %s is out of range (%s%" PRIu64 "..%" PRIu64 " bytes)",
                        p->key, v, k->zero_ok ? "0 or " : "", (uint64_t)k->min, key_max(k));
    snprintf(digits, sizeof(digits), "%" PRIu64, n);
    return set_uint(p, k, digits);
}

/* [relay] accounting_start = [D ]HH:MM: the time of day (UTC) periods
 * start, and the day of the month (1..28, default 1) months start. */
static int set_acct_start(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct acct_opts *o = &p->c->opts.bw.acct;
    unsigned d = 1, hh, mm;
    char tail;
    int n = sscanf(v, "%u %u:%u%c", &d, &hh, &mm, &tail);

    (void)k;
    if (n != 3) {
        bool digits = strspn(v, "0123456789:") == strlen(v);

        d = 1;
        n = digits && sscanf(v, "%u:%u%c", &hh, &mm, &tail) == 2 ? 3 : 0;
    } else if (strspn(v, "0123456789 :") != strlen(v)) {
        n = 0;
    }
    if (n != 3 || d < 1 || d > 28 || hh > 23 || mm > 59)
        return cfg_fail(p, p->line,
                        "bad %s '%s' (expected HH:MM, or D HH:MM with D from 1 to 28; UTC)", p->key,
                        v);
    o->start_min = hh * 60 + mm;
    o->start_mday = d;
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
        return cfg_fail(p, p->line, "%s = %s is not a power of two", p->key, v);
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
        return (struct named_spec){
            .kind = "bootstrap", .name = bs->name, .uri = bs->uri, .pk = bs->pk};
    }
    struct peer_spec *ps = &p->c->peers[p->peer];
    return (struct named_spec){.kind = "peer", .name = ps->name, .uri = ps->uri, .pk = ps->pk};
}

static int set_peer_address(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct named_spec ns = cur_spec(p);
    struct ovl_uri u;
    int err = parse_address(p, v, &u);

    (void)k;
    if (err)
        return err;
    if (u.port == 0)
        return cfg_fail(p, p->line, "%s %s: address '%s' needs a port from 1 to 65535", ns.kind,
                        ns.name, v);
    return copy_value(p, ns.uri, OVL_URI_MAX, v);
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
    (void)k;
    if (strcmp(v, "bootstrap") == 0)
        p->c->client.source = CHAIN_SOURCE_BOOTSTRAP;
    else if (strcmp(v, "local") == 0)
        p->c->client.source = CHAIN_SOURCE_LOCAL;
    else
        return cfg_fail(p, p->line, "unknown %s '%s' (expected bootstrap or local)", p->key, v);
    return 0;
}

/* [exit] policy: each line's rules are added after the earlier lines'. */
static int set_policy(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct exit_policy *ep = &p->c->dir.exit_policy;
    uint8_t enc[DESC_POLICY_MAX];
    unsigned had = ep->n, bad;
    const char *why;
    size_t len;

    (void)k;
    if (exit_policy_parse(ep, v, &bad, &why) != 0)
        return cfg_fail(p, p->line, "%s rule %u: %s", p->key, bad + 1, why);
    if (ep->n == had)
        return cfg_fail(p, p->line, "%s has no rules", p->key);
    if (exit_policy_encode(ep, enc, sizeof(enc), &len) != 0)
        return cfg_fail(p, p->line, "%s too long for a descriptor (over %d bytes encoded)", p->key,
                        DESC_POLICY_MAX);
    return 0;
}

/* [relay] family = ID ID ...: node IDs (ovld --print-id), separated by
 * blanks or commas, added to those of earlier lines; at most
 * DESC_FAMILY_MAX, none twice (our own is refused by dir_init, which
 * knows it). */
static int set_family(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct dir_opts *o = &p->c->dir;
    const char *s = v + strspn(v, " \t,");
    char id[OVL_NODE_ID_LEN + 1];
    size_t n;

    (void)k;
    if (*s == '\0')
        return cfg_fail(p, p->line, "%s is empty (expected node IDs)", p->key);
    for (; *s; s += n, s += strspn(s, " \t,")) {
        n = strcspn(s, " \t,");
        if (o->n_family == DESC_FAMILY_MAX)
            return cfg_fail(p, p->line, "%s names over %d relays", p->key, DESC_FAMILY_MAX);
        snprintf(id, sizeof(id), "%.*s", (int)(n < OVL_NODE_ID_LEN ? n : OVL_NODE_ID_LEN), s);
        if (n != OVL_NODE_ID_LEN || node_id_parse(o->family[o->n_family], id) != 0)
            return cfg_fail(p, p->line,
                            "%s: bad id '%.*s' (expected %d characters, as ovld --print-id prints)",
                            p->key, (int)n, s, OVL_NODE_ID_LEN);
        for (unsigned i = 0; i < o->n_family; i++)
            if (memcmp(o->family[i], o->family[o->n_family], OVL_ED25519_PK) == 0)
                return cfg_fail(p, p->line, "%s names %s twice", p->key, id);
        o->n_family++;
    }
    return 0;
}

/* Parse v, IP:PORT or [IPv6]:PORT of at most max - 1 bytes, into sa;
 * sect names the section in the message. */
static int parse_ip_port(struct cfg_parse *p, const char *sect, const char *v, size_t max,
                         struct sockaddr_storage *sa)
{
    char uri[OVL_URI_MAX];
    struct ovl_uri u;

    snprintf(uri, sizeof(uri), "tcp://%s", v);
    if (strlen(v) >= max || uri_parse(&u, uri) != 0 || uri_sockaddr(&u, sa) != 0)
        return cfg_fail(p, p->line, "bad [%s] %s '%s' (expected IP:PORT, [IPv6]:PORT)", sect,
                        p->key, v);
    return 0;
}

/* [socks] listen = HOST:PORT: an IP literal; beyond loopback only with
 * allow_remote (checked in cfg_finish, which sees the whole file). */
static int set_socks(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct client_opts *o = &p->c->client;
    struct sockaddr_storage sa;
    unsigned i = o->n_socks;

    (void)k;
    if (i >= CLIENT_MAX_SOCKS)
        return cfg_fail(p, p->line, "too many %s addresses (at most %d)", p->key, CLIENT_MAX_SOCKS);
    if (parse_ip_port(p, "socks", v, CLIENT_SOCKS_ADDR, &sa) != 0)
        return OVL_EINVAL;
    if (sa.ss_family == AF_INET
            ? ((const uint8_t *)&((struct sockaddr_in *)&sa)->sin_addr)[0] != 127
            : !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&sa)->sin6_addr))
        p->socks_public |= 1u << i;
    p->socks_line[i] = p->line;
    snprintf(o->socks[i], CLIENT_SOCKS_ADDR, "%s", v);
    o->n_socks++;
    return 0;
}

/* [metrics] listen = IP:PORT: an IP literal; ovld warns at start about
 * one that is not a loopback address. */
static int set_metrics(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct sockaddr_storage sa;

    (void)k;
    if (parse_ip_port(p, "metrics", v, sizeof(p->c->metrics_listen), &sa) != 0)
        return OVL_EINVAL;
    memcpy(p->c->metrics_listen, v, strlen(v) + 1);
    return 0;
}

/* [service.NAME] port = 1..65535, and target = HOST:PORT: a name or an
 * IP literal, kept as a name that each stream resolves (a literal needs
 * no DNS). */
static int set_service(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct client_service *sv = &p->c->client.services[p->peer];
    struct stream_target *t = &sv->target;
    char uri[OVL_URI_MAX];
    struct ovl_uri u;
    uint64_t n;

    (void)k;
    if (strcmp(p->key, "port") == 0) {
        if (parse_decimal(v, &n) != 0 || n < 1 || n > 65535)
            return cfg_fail(p, p->line, "service %s: bad port '%s' (expected 1..65535)", sv->name,
                            v);
        sv->port = (uint16_t)n;
        return 0;
    }
    snprintf(uri, sizeof(uri), "tcp://%s", v);
    if (strlen(v) >= sizeof(uri) - 6 || uri_parse(&u, uri) != 0 || u.port == 0 ||
        strlen(u.host) >= sizeof(t->name))
        return cfg_fail(p, p->line,
                        "service %s: bad target '%s' (expected HOST:PORT or [IPv6]:PORT)", sv->name,
                        v);
    memset(t, 0, sizeof(*t));
    t->atyp = STA_NAME;
    t->port = u.port;
    memcpy(t->name, u.host, strlen(u.host) + 1);
    return 0;
}

/* The known transports, compiled in or not. */
static const char *const tp_known[] = {"tcp", "quic"};

/* transports = LIST and prefer = NAME: masks of tp_bit(). */
static int set_transports(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    bool list = strcmp(p->key, "transports") == 0;
    unsigned mask = 0;
    char item[16];

    (void)k;
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
                            p->key, list ? "a list of tcp and quic" : "tcp or quic");
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

/* Return the scheme whose tp_bit() is bit. */
const char *cfg_tp_scheme(unsigned bit)
{
    for (size_t i = 0; i < sizeof(tp_known) / sizeof(tp_known[0]); i++)
        if (tp_bit(tp_known[i]) == bit)
            return tp_known[i];
    return "?";
}

/* The setters, by index: a row stores a byte, not a pointer (the size
 * budget: one row a key). */
enum key_set {
    KS_AEAD,
    KS_BOOL,
    KS_LEVEL,
    KS_LISTEN,
    KS_METRICS,
    KS_PATH,
    KS_PEER_ADDRESS,
    KS_PEER_ID,
    KS_POLICY,
    KS_FAMILY,
    KS_SOCKS,
    KS_SERVICE,
    KS_SIZE,
    KS_ACCT_START,
    KS_POW2,
    KS_ROLES,
    KS_SOURCE,
    KS_SUBNETS,
    KS_SYSLOG,
    KS_TRANSPORTS,
    KS_UINT,
    KS_WEIGHTING,
};

/* clang-format off */
static const key_setter cfg_setters[] = {
    [KS_AEAD] = set_aead,
    [KS_BOOL] = set_bool,
    [KS_LEVEL] = set_level,
    [KS_LISTEN] = set_listen,
    [KS_METRICS] = set_metrics,
    [KS_PATH] = set_path,
    [KS_PEER_ADDRESS] = set_peer_address,
    [KS_PEER_ID] = set_peer_id,
    [KS_POLICY] = set_policy,
    [KS_FAMILY] = set_family,
    [KS_SOCKS] = set_socks,
    [KS_SERVICE] = set_service,
    [KS_SIZE] = set_size,
    [KS_ACCT_START] = set_acct_start,
    [KS_POW2] = set_pow2,
    [KS_ROLES] = set_roles,
    [KS_SOURCE] = set_source,
    [KS_SUBNETS] = set_subnets,
    [KS_SYSLOG] = set_syslog,
    [KS_TRANSPORTS] = set_transports,
    [KS_UINT] = set_uint,
    [KS_WEIGHTING] = set_weighting,
};
/* clang-format on */

/* Where a key stores its value: the offset and size of a field of struct
 * ovl_config (OPT_FIELD: of its node options). */
#define CFG_FIELD(f)                                                                               \
    .off = (uint16_t)offsetof(struct ovl_config, f),                                               \
    .width = (uint16_t)sizeof(((struct ovl_config *)0)->f)
#define OPT_FIELD(f) CFG_FIELD(opts.f)
/* The fields from a through b (an array and its count, in either order). */
#define CFG_SPAN(a, b)                                                                             \
    .off = (uint16_t)offsetof(struct ovl_config, a),                                               \
    .width = (uint16_t)(offsetof(struct ovl_config, b) + sizeof(((struct ovl_config *)0)->b) -     \
                        offsetof(struct ovl_config, a))
#define U32_MAX_MS 86400000u
_Static_assert(sizeof(struct ovl_config) <= UINT16_MAX, "key_def.off is 16 bits");

/* Every key: its section and name, the setter that checks and stores its
 * value and, for integers and paths, the bounds and the field. A bound left
 * out is 0; so is the field of a key whose setter knows where to store.
 * The names are one string of names, in the rows' order, so that the rows
 * hold no pointer (each would be 8 bytes of RELRO and a relocation). */
/* clang-format off */
#define CFG_KEYS(X)                                                                                \
    /* [node] */                                                                                   \
    X(NODE, roles, .set = KS_ROLES, .reload = RL_RESTART, CFG_FIELD(roles))                        \
    X(NODE, data_dir, .set = KS_PATH, .max = PATH_MAX - 1, .reload = RL_RESTART,                   \
        CFG_FIELD(data_dir))                                                                       \
    X(NODE, listen, .set = KS_LISTEN, .repeat = 1, .reload = RL_RESTART,                           \
        CFG_SPAN(listen, n_listen))                                                                \
    X(NODE, control_socket, .set = KS_PATH, .max = SUN_PATH_MAX, .reload = RL_RESTART,             \
        CFG_FIELD(control_socket))                                                                 \
    X(NODE, aead, .set = KS_AEAD, .reload = RL_RESTART, OPT_FIELD(aead_suites))                    \
    X(NODE, transports, .set = KS_TRANSPORTS, .reload = RL_RESTART, OPT_FIELD(transports))         \
    X(NODE, prefer, .set = KS_TRANSPORTS, .reload = RL_RESTART, OPT_FIELD(prefer))                 \
    X(NODE, max_queued, .set = KS_UINT, .zero_ok = 1, .min = 1048576, .max = 1, .max_shift = 40,   \
        .reload = RL_NODE, OPT_FIELD(max_queued))                                                  \
    X(NODE, cover_budget, .set = KS_UINT, .min = 0, .max = 100, .reload = RL_NODE,                 \
        OPT_FIELD(cover_budget))                                                                   \
    X(NODE, hidden, .set = KS_BOOL, .reload = RL_RESTART, CFG_FIELD(hidden))                       \
    X(NODE, intros, .set = KS_UINT, .min = 1, .max = 4, .reload = RL_RESTART, CFG_FIELD(intros))   \
    X(NODE, rate, .set = KS_SIZE, .zero_ok = 1, .min = 65536, .max = 1, .max_shift = 40,           \
        .reload = RL_NODE, OPT_FIELD(bw.rate[TPM_NODE]))                                           \
    X(NODE, burst, .set = KS_SIZE, .zero_ok = 1, .min = 8192, .max = 1, .max_shift = 40,           \
        .reload = RL_NODE, OPT_FIELD(bw.burst[TPM_NODE]))                                          \
    /* [log] */                                                                                    \
    X(LOG, level, .set = KS_LEVEL, .reload = RL_LOG, CFG_FIELD(log_level))                         \
    X(LOG, syslog, .set = KS_SYSLOG, .reload = RL_LOG, CFG_FIELD(syslog))                          \
    /* [link] */                                                                                   \
    X(LINK, handshake_timeout, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_NODE,       \
        OPT_FIELD(handshake_timeout_ms))                                                           \
    X(LINK, idle_timeout, .set = KS_UINT, .zero_ok = 1, .min = 1000, .max = 86400000,              \
        .reload = RL_NODE, OPT_FIELD(idle_timeout_ms))                                             \
    X(LINK, heartbeat, .set = KS_UINT, .zero_ok = 1, .min = 100, .max = 600000, .reload = RL_NODE, \
        OPT_FIELD(heartbeat_ms))                                                                   \
    X(LINK, heartbeat_misses, .set = KS_UINT, .min = 1, .max = 1000, .reload = RL_NODE,            \
        OPT_FIELD(heartbeat_misses))                                                               \
    X(LINK, padding_min, .set = KS_UINT, .min = 10, .max = 3600000, .reload = RL_NODE,             \
        OPT_FIELD(padding_min_ms))                                                                 \
    X(LINK, padding_max, .set = KS_UINT, .zero_ok = 1, .min = 10, .max = 3600000,                  \
        .reload = RL_NODE, OPT_FIELD(padding_max_ms))                                              \
    X(LINK, max_links, .set = KS_UINT, .min = 1, .max = 65536, .reload = RL_NODE,                  \
        OPT_FIELD(max_links))                                                                      \
    X(LINK, max_links_per_block, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 65536,             \
        .reload = RL_NODE, OPT_FIELD(max_links_per_block))                                         \
    X(LINK, handshake_rate, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 1000000,                \
        .reload = RL_NODE, OPT_FIELD(hs_rate_per_block))                                           \
    X(LINK, handshake_burst, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_NODE,          \
        OPT_FIELD(hs_burst_per_block))                                                             \
    X(LINK, send_queue, .set = KS_UINT, .min = 16384, .max = 67108864, .reload = RL_RESTART,       \
        OPT_FIELD(sendq_max))                                                                      \
    X(LINK, rekey_cells, .set = KS_POW2, .min = 16, .max = 1, .max_shift = 32, .reload = RL_NODE,  \
        OPT_FIELD(rekey_cells))                                                                    \
    X(LINK, reconnect_min, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_NODE,           \
        OPT_FIELD(reconnect_min_ms))                                                               \
    X(LINK, reconnect_max, .set = KS_UINT, .min = 1000, .max = 3600000, .reload = RL_NODE,         \
        OPT_FIELD(reconnect_max_ms))                                                               \
    /* [peer.NAME] and [bootstrap.NAME] */                                                         \
    X(PEER, address, .set = KS_PEER_ADDRESS, .reload = RL_NODE, CFG_SPAN(peers, n_peers))          \
    X(PEER, id, .set = KS_PEER_ID, .reload = RL_NODE, CFG_SPAN(peers, n_peers))                    \
    X(BOOTSTRAP, address, .set = KS_PEER_ADDRESS, .reload = RL_NODE | RL_DIR,                      \
        CFG_SPAN(bootstraps, n_bootstraps))                                                        \
    X(BOOTSTRAP, id, .set = KS_PEER_ID, .reload = RL_NODE | RL_DIR,                                \
        CFG_SPAN(bootstraps, n_bootstraps))                                                        \
    /* [dir] */                                                                                    \
    X(DIR, heartbeat, .set = KS_UINT, .min = 1000, .max = 600000, .reload = RL_RESTART,            \
        CFG_FIELD(dir.heartbeat_ms))                                                               \
    X(DIR, ttl, .set = KS_UINT, .min = 1000, .max = U32_MAX_MS, .reload = RL_RESTART,              \
        CFG_FIELD(dir.ttl_ms))                                                                     \
    X(DIR, chain_cache_ttl, .set = KS_UINT, .min = 1000, .max = U32_MAX_MS, .reload = RL_RESTART,  \
        CFG_FIELD(dir.chain_cache_ttl_ms))                                                         \
    X(DIR, max_nodes, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RESTART,              \
        CFG_FIELD(dir.max_nodes))                                                                  \
    X(DIR, max_cached_chains, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RESTART,      \
        CFG_FIELD(dir.max_chains))                                                                 \
    X(DIR, onion_rotate, .set = KS_UINT, .min = 60000, .max = 604800000, .reload = RL_RESTART,     \
        CFG_FIELD(dir.onion_rotate_ms))                                                            \
    X(DIR, onion_overlap, .set = KS_UINT, .min = 0, .max = U32_MAX_MS, .reload = RL_RESTART,       \
        CFG_FIELD(dir.onion_overlap_ms))                                                           \
    X(DIR, request_timeout, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_RESTART,       \
        CFG_FIELD(dir.request_timeout_ms))                                                         \
    X(DIR, request_rate, .set = KS_UINT, .min = 1, .max = 1000, .reload = RL_RESTART,              \
        CFG_FIELD(dir.request_rate))                                                               \
    X(DIR, request_burst, .set = KS_UINT, .min = 1, .max = 100000, .reload = RL_RESTART,           \
        CFG_FIELD(dir.request_burst))                                                              \
    X(DIR, allow_private_addresses, .set = KS_BOOL, .reload = RL_RESTART,                          \
        CFG_FIELD(dir.allow_private))                                                              \
    X(DIR, chain_refresh, .set = KS_UINT, .zero_ok = 1, .min = 1000, .max = U32_MAX_MS,            \
        .reload = RL_RESTART, CFG_FIELD(dir.chain_refresh_ms))                                     \
    X(DIR, block_request_rate, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 1000000,             \
        .reload = RL_RESTART, CFG_FIELD(dir.block_request_rate))                                   \
    X(DIR, block_request_burst, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RESTART,    \
        CFG_FIELD(dir.block_request_burst))                                                        \
    X(DIR, block_chain_rate, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 1000000,               \
        .reload = RL_RESTART, CFG_FIELD(dir.block_chain_rate))                                     \
    X(DIR, block_chain_burst, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RESTART,      \
        CFG_FIELD(dir.block_chain_burst))                                                          \
    X(DIR, max_nodes_per_block, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 1000000,            \
        .reload = RL_RESTART, CFG_FIELD(dir.max_nodes_per_block))                                  \
    X(DIR, list_lifetime, .set = KS_UINT, .min = 10000, .max = U32_MAX_MS, .reload = RL_RESTART,   \
        CFG_FIELD(dir.list_lifetime_ms))                                                           \
    X(DIR, list_rate, .set = KS_UINT, .zero_ok = 1, .min = 64, .max = 4194304,                     \
        .reload = RL_RESTART, CFG_FIELD(dir.list_rate))                                            \
    /* [chain] */                                                                                  \
    X(CHAIN, source, .set = KS_SOURCE, .reload = RL_CLIENT, CFG_FIELD(client.source))              \
    X(CHAIN, distinct_subnets, .set = KS_SUBNETS, .reload = RL_DIR | RL_CLIENT,                    \
        CFG_FIELD(client.distinct_subnets))                                                        \
    X(CHAIN, weighting, .set = KS_WEIGHTING, .reload = RL_DIR | RL_CLIENT,                         \
        CFG_FIELD(client.by_capacity))                                                             \
    X(CHAIN, length, .set = KS_UINT, .min = 1, .max = DIR_MAX_HOPS, .reload = RL_CLIENT,           \
        CFG_FIELD(client.length))                                                                  \
    X(CHAIN, backups, .set = KS_UINT, .min = 0, .max = DIR_MAX_BACKUPS, .reload = RL_CLIENT,       \
        CFG_FIELD(client.backups))                                                                 \
    X(CHAIN, lifetime, .set = KS_UINT, .min = 10000, .max = U32_MAX_MS, .reload = RL_CLIENT,       \
        CFG_FIELD(client.lifetime_ms))                                                             \
    X(CHAIN, setup_timeout, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_CLIENT,        \
        CFG_FIELD(client.setup_timeout_ms))                                                        \
    X(CHAIN, choices, .set = KS_UINT, .min = 1, .max = 8, .reload = RL_CLIENT,                     \
        CFG_FIELD(client.choices))                                                                 \
    /* [client] */                                                                                 \
    X(CLIENT, max_message, .set = KS_UINT, .min = 1, .max = 67108864, .reload = RL_RESTART,        \
        CFG_FIELD(client.max_message))                                                             \
    X(CLIENT, inbox_messages, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RESTART,      \
        CFG_FIELD(client.inbox_messages))                                                          \
    X(CLIENT, inbox_bytes, .set = KS_UINT, .min = 1024, .max = 1, .max_shift = 32,                 \
        .reload = RL_RESTART, CFG_FIELD(client.inbox_bytes))                                       \
    X(CLIENT, send_queue, .set = KS_UINT, .min = 1, .max = 100000, .reload = RL_CLIENT,            \
        CFG_FIELD(client.send_queue))                                                              \
    X(CLIENT, reassembly_timeout, .set = KS_UINT, .min = 1000, .max = 3600000,                     \
        .reload = RL_RESTART, CFG_FIELD(client.reassembly_timeout_ms))                             \
    X(CLIENT, retransmit, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_CLIENT,          \
        CFG_FIELD(client.retransmit_ms))                                                           \
    X(CLIENT, deadline, .set = KS_UINT, .min = 1000, .max = 3600000, .reload = RL_CLIENT,          \
        CFG_FIELD(client.deadline_ms))                                                             \
    X(CLIENT, cover_interval, .set = KS_UINT, .zero_ok = 1, .min = 10, .max = 3600000,             \
        .reload = RL_CLIENT, CFG_FIELD(client.cover_interval_ms))                                  \
    X(CLIENT, loop_interval, .set = KS_UINT, .zero_ok = 1, .min = 10, .max = 3600000,              \
        .reload = RL_CLIENT, CFG_FIELD(client.loop_interval_ms))                                   \
    X(CLIENT, constant_rate, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 10000,                 \
        .reload = RL_CLIENT, CFG_FIELD(client.constant_rate))                                      \
    X(CLIENT, replay_window, .set = KS_UINT, .min = 10000, .max = U32_MAX_MS,                      \
        .reload = RL_RESTART, CFG_FIELD(client.replay_window_ms))                                  \
    X(CLIENT, tombstones, .set = KS_UINT, .min = 16, .max = 10000000, .reload = RL_RESTART,        \
        CFG_FIELD(client.tombstones))                                                              \
    X(CLIENT, max_chains, .set = KS_UINT, .min = 1, .max = 256, .reload = RL_CLIENT,               \
        CFG_FIELD(client.max_chains))                                                              \
    X(CLIENT, chain_idle, .set = KS_UINT, .min = 1000, .max = 3600000, .reload = RL_CLIENT,        \
        CFG_FIELD(client.chain_idle_ms))                                                           \
    X(CLIENT, guards, .set = KS_UINT, .zero_ok = 1, .min = 1, .max = 8, .reload = RL_RESTART,      \
        CFG_FIELD(client.guards))                                                                  \
    X(CLIENT, guard_down, .set = KS_UINT, .min = 60000, .max = 1, .max_shift = 36,                 \
        .reload = RL_CLIENT, CFG_FIELD(client.guard_down_ms))                                      \
    X(CLIENT, guard_lifetime, .set = KS_UINT, .min = 60000, .max = 1, .max_shift = 36,             \
        .reload = RL_CLIENT, CFG_FIELD(client.guard_life_ms))                                      \
    /* [relay] */                                                                                  \
    X(RELAY, max_chains, .set = KS_UINT, .min = 1, .max = 10000000, .reload = RL_RELAY,            \
        CFG_FIELD(relay.max_chains))                                                               \
    X(RELAY, setup_timeout, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_RELAY,         \
        CFG_FIELD(relay.setup_timeout_ms))                                                         \
    X(RELAY, max_lifetime, .set = KS_UINT, .min = 10, .max = 86400, .reload = RL_RELAY,            \
        CFG_FIELD(relay.max_lifetime_s))                                                           \
    X(RELAY, exit_queue, .set = KS_UINT, .min = 1, .max = 65536, .reload = RL_RESTART,             \
        CFG_FIELD(relay.exit_queue))                                                               \
    X(RELAY, max_chains_per_link, .set = KS_UINT, .min = 0, .max = 10000000, .reload = RL_RELAY,   \
        CFG_FIELD(relay.max_chains_per_link))                                                      \
    X(RELAY, max_chains_per_block, .set = KS_UINT, .min = 0, .max = 10000000, .reload = RL_RELAY,  \
        CFG_FIELD(relay.max_chains_per_block))                                                     \
    X(RELAY, stall_timeout, .set = KS_UINT, .min = 100, .max = 600000, .reload = RL_RELAY,         \
        CFG_FIELD(relay.stall_timeout_ms))                                                         \
    X(RELAY, capacity, .set = KS_UINT, .min = 0, .max = 10000000, .reload = RL_DIR,                \
        CFG_FIELD(dir.capacity_kib))                                                               \
    X(RELAY, loop_interval, .set = KS_UINT, .zero_ok = 1, .min = 10, .max = 3600000,               \
        .reload = RL_CLIENT, CFG_FIELD(relay_loop_ms))                                             \
    X(RELAY, family, .set = KS_FAMILY, .repeat = 1, .reload = RL_DIR,                              \
        CFG_SPAN(dir.n_family, dir.family))                                                        \
    X(RELAY, rate, .set = KS_SIZE, .zero_ok = 1, .min = 65536, .max = 1, .max_shift = 40,          \
        .reload = RL_NODE, OPT_FIELD(bw.rate[TPM_RELAY]))                                          \
    X(RELAY, burst, .set = KS_SIZE, .zero_ok = 1, .min = 8192, .max = 1, .max_shift = 40,          \
        .reload = RL_NODE, OPT_FIELD(bw.burst[TPM_RELAY]))                                         \
    X(RELAY, max_per_day, .set = KS_SIZE, .zero_ok = 1, .min = 1048576, .max = 1, .max_shift = 50, \
        .reload = RL_NODE, OPT_FIELD(bw.acct.max[ACCT_DAY]))                                       \
    X(RELAY, max_per_month, .set = KS_SIZE, .zero_ok = 1, .min = 1048576, .max = 1,                \
        .max_shift = 50, .reload = RL_NODE, OPT_FIELD(bw.acct.max[ACCT_MONTH]))                    \
    X(RELAY, accounting_start, .set = KS_ACCT_START, .reload = RL_NODE,                            \
        CFG_SPAN(opts.bw.acct.start_min, opts.bw.acct.start_mday))                                 \
    /* [exit] */                                                                                   \
    X(EXIT, policy, .set = KS_POLICY, .repeat = 1, .reload = RL_DIR, CFG_FIELD(dir.exit_policy))   \
    X(EXIT, max_streams, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RELAY,             \
        CFG_FIELD(relay.max_streams))                                                              \
    X(EXIT, max_streams_per_chain, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_RELAY,   \
        CFG_FIELD(relay.max_streams_per_chain))                                                    \
    X(EXIT, stream_idle_timeout, .set = KS_UINT, .min = 1000, .max = 86400000, .reload = RL_RELAY, \
        CFG_FIELD(relay.stream_idle_ms))                                                           \
    /* [socks] */                                                                                  \
    X(SOCKS, listen, .set = KS_SOCKS, .repeat = 1, .reload = RL_CLIENT,                            \
        CFG_SPAN(client.socks, client.n_socks))                                                    \
    X(SOCKS, allow_remote, .set = KS_BOOL, .reload = RL_CLIENT, CFG_FIELD(client.socks_remote))    \
    /* [service] and [service.NAME] */                                                             \
    X(SERVICE, max_streams, .set = KS_UINT, .min = 1, .max = 1000000, .reload = RL_CLIENT,         \
        CFG_FIELD(client.svc_max_streams))                                                         \
    X(SERVICE, max_streams_per_chain, .set = KS_UINT, .min = 1, .max = 1000000,                    \
        .reload = RL_CLIENT, CFG_FIELD(client.svc_max_per_chain))                                  \
    X(SERVICE, stream_idle_timeout, .set = KS_UINT, .min = 1000, .max = 86400000,                  \
        .reload = RL_CLIENT, CFG_FIELD(client.svc_idle_ms))                                        \
    X(SVC, port, .set = KS_SERVICE, .reload = RL_CLIENT,                                           \
        CFG_SPAN(client.services, client.n_services))                                              \
    X(SVC, target, .set = KS_SERVICE, .reload = RL_CLIENT,                                         \
        CFG_SPAN(client.services, client.n_services))                                              \
    /* [metrics] */                                                                                \
    X(METRICS, listen, .set = KS_METRICS, .reload = RL_APP, CFG_FIELD(metrics_listen))
/* clang-format on */
#define KEY_NAME(s, n, ...) #n "\0"
#define KEY_ROW(s, n, ...)  {.sect = SECT_##s, __VA_ARGS__},

static const char cfg_key_names[] = CFG_KEYS(KEY_NAME);
const struct key_def cfg_keys[] = {CFG_KEYS(KEY_ROW)};

_Static_assert(sizeof(struct key_def) == 16, "one 16-byte row a key");

/* The parse state's arrays of key lines are CFG_KEY_COUNT long. */
_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] == CFG_KEY_COUNT,
               "CFG_KEY_COUNT in config_int.h must count the rows of cfg_keys");

/* Return the name of key k, the k-th of cfg_key_names. */
const char *cfg_key_name(const struct key_def *k)
{
    const char *s = cfg_key_names;

    for (size_t i = (size_t)(k - cfg_keys); i > 0; i--)
        s += strlen(s) + 1;
    return s;
}

/* Return the key called name in section sect, or NULL. */
const struct key_def *cfg_key_find(enum cfg_sect sect, const char *name)
{
    const char *s = cfg_key_names;

    for (size_t i = 0; i < CFG_KEY_COUNT; s += strlen(s) + 1, i++)
        if (cfg_keys[i].sect == sect && strcmp(s, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

int cfg_set(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    p->key = cfg_key_name(k);
    return cfg_setters[k->set](p, k, v);
}
