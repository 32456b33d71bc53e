/* config.c - ovld's INI configuration (reference: docs/CONFIG.md): the
 * reader. What each key means is config_keys.c.
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

#include "ovl_config.h"

#include "app/config_int.h"
#include "core/transport.h"
#include "lib/crypto.h"
#include "lib/uri.h"

static const char *const sect_names[] = {
    [SECT_NONE] = "",
    [SECT_NODE] = "node",
    [SECT_LOG] = "log",
    [SECT_LINK] = "link",
    [SECT_DIR] = "dir",
    [SECT_CHAIN] = "chain",
    [SECT_CLIENT] = "client",
    [SECT_RELAY] = "relay",
    [SECT_EXIT] = "exit",
    [SECT_SOCKS] = "socks",
    [SECT_SERVICE] = "service",
    [SECT_METRICS] = "metrics",
    [SECT_PEER] = "peer",
    [SECT_BOOTSTRAP] = "bootstrap",
    [SECT_SVC] = "service",
};

/* Return the name of section kind sect. */
const char *cfg_sect_name(enum cfg_sect sect)
{
    return (unsigned)sect <= SECT_SVC ? sect_names[sect] : "";
}

/* Record the first error of the parse; see config_int.h. */
int cfg_fail(struct cfg_parse *p, unsigned line, const char *fmt, ...)
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

/* The NAME of named section i of kind sect. */
static char *cfg_named_name(struct ovl_config *c, enum cfg_sect sect, unsigned i)
{
    return sect == SECT_BOOTSTRAP ? c->bootstraps[i].name
           : sect == SECT_SVC     ? c->client.services[i].name
                                  : c->peers[i].name;
}

/* Start a [peer.NAME] (sect SECT_PEER), [bootstrap.NAME] or [service.NAME]
 * section. */
static void cfg_named_begin(struct cfg_parse *p, enum cfg_sect sect, const char *name)
{
    struct ovl_config *c = p->c;
    bool boot = sect == SECT_BOOTSTRAP, svc = sect == SECT_SVC;
    const char *kind = sect_names[sect];
    unsigned *count = boot ? &c->n_bootstraps : svc ? &c->client.n_services : &c->n_peers;
    unsigned max = boot ? DIR_MAX_BOOTSTRAPS : svc ? CLIENT_MAX_SERVICES : NODE_MAX_PEERS;
    unsigned *lines = boot ? p->boot_line : svc ? p->svc_line : p->peer_line;

    if (!peer_name_ok(name)) {
        cfg_fail(p, p->line, "bad %s name '%s' in [%s.%s] (1 to %d of A-Z a-z 0-9 _ -)", kind, name,
                 kind, name, PEER_NAME_MAX - 1);
        return;
    }
    for (unsigned i = 0; i < *count; i++) {
        if (strcmp(cfg_named_name(c, sect, i), name) == 0) {
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
    memcpy(cfg_named_name(c, sect, p->peer), name, strlen(name) + 1);
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
    if (strncmp(p->sect_name, "service.", 8) == 0) {
        cfg_named_begin(p, SECT_SVC, p->sect_name + 8);
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
    const struct key_def *k = cfg_key_find(p->sect, name);
    if (!k)
        return !cfg_fail(p, p->line, "unknown key '%s' in [%s]", name, p->sect_name);
    size_t i = (size_t)(k - cfg_keys);
    unsigned *seen = p->sect == SECT_PEER        ? &p->peer_key_line[p->peer][i]
                     : p->sect == SECT_BOOTSTRAP ? &p->boot_key_line[p->peer][i]
                     : p->sect == SECT_SVC       ? &p->svc_key_line[p->peer][i]
                                                 : &p->key_line[i];
    if (*seen && !k->repeat)
        return !cfg_fail(p, p->line, "duplicate key '%s' in [%s] (first on line %u)", name,
                         p->sect_name, *seen);
    *seen = p->line;
    return cfg_set(p, k, value) == 0;
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

/* Fail unless each of the count named sections of kind sect has its two
 * required keys: address and id, or a service's port and target. */
static bool cfg_named_complete(struct cfg_parse *p, enum cfg_sect sect, unsigned count)
{
    bool boot = sect == SECT_BOOTSTRAP, svc = sect == SECT_SVC;
    const char *need[2] = {svc ? "port" : "address", svc ? "target" : "id"};

    for (unsigned i = 0; i < count; i++) {
        const unsigned *seen = boot  ? p->boot_key_line[i]
                               : svc ? p->svc_key_line[i]
                                     : p->peer_key_line[i];
        unsigned line = boot ? p->boot_line[i] : svc ? p->svc_line[i] : p->peer_line[i];

        for (int k = 0; k < 2; k++) {
            if (!seen[cfg_key_find(sect, need[k]) - cfg_keys]) {
                cfg_fail(p, line, "%s %s has no %s", sect_names[sect],
                         cfg_named_name(p->c, sect, i), need[k]);
                return false;
            }
        }
    }
    return true;
}

/* Fail unless services are a client's and each has a port of its own. */
static bool cfg_services(struct cfg_parse *p)
{
    const struct client_opts *o = &p->c->client;
    size_t port = (size_t)(cfg_key_find(SECT_SVC, "port") - cfg_keys);

    if (o->n_services && !(p->c->roles & ROLE_CLIENT))
        return !cfg_fail(p, p->svc_line[0],
                         "[service.%s] needs the client role (roles has no client)",
                         o->services[0].name);
    for (unsigned i = 0; i < o->n_services; i++)
        for (unsigned j = 0; j < i; j++)
            if (o->services[i].port == o->services[j].port)
                return !cfg_fail(p, p->svc_key_line[i][port],
                                 "service %s: port %u is service %s's already (line %u)",
                                 o->services[i].name, o->services[i].port, o->services[j].name,
                                 p->svc_key_line[j][port]);
    return true;
}

/* The larger of the lines where two plain keys were set (0 if neither was). */
static unsigned later_line(const struct cfg_parse *p, enum cfg_sect sect, const char *a,
                           const char *b)
{
    unsigned la = p->key_line[cfg_key_find(sect, a) - cfg_keys];
    unsigned lb = p->key_line[cfg_key_find(sect, b) - cfg_keys];
    return la > lb ? la : lb;
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

/* Settle [node] hidden: unset, it is on for a node that is only a client
 * and listens nowhere (it could not be reached otherwise). A hidden node
 * publishes no address, so it may neither listen nor be a relay or a
 * bootstrap. */
static bool cfg_hidden(struct cfg_parse *p)
{
    struct ovl_config *c = p->c;
    unsigned line = p->key_line[cfg_key_find(SECT_NODE, "hidden") - cfg_keys];

    if (!line)
        c->hidden = c->roles == ROLE_CLIENT && !c->n_listen;
    if (!c->hidden)
        return true;
    if (c->roles != ROLE_CLIENT)
        return !cfg_fail(p, line, "hidden = true needs roles = client alone: relays and "
                                  "bootstraps publish their address");
    if (c->n_listen)
        return !cfg_fail(p, line, "hidden = true publishes no address: remove [node] listen");
    c->client.intros = c->intros;
    c->opts.flags |= NODE_O_HIDDEN;
    return true;
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
        return !cfg_fail(p, line, "prefer = %s is not among transports",
                         cfg_tp_scheme(c->opts.prefer));
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
                snprintf(dst, OVL_URI_MAX, "%s://%.*s", cfg_tp_scheme(b), OVL_URI_MAX - 8, raw[i]);
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
/* A burst needs its rate, and [relay]'s keys the relay role. */
static bool cfg_bandwidth(struct cfg_parse *p)
{
    static const char *const relay_keys[] = {"rate", "burst", "max_per_day", "max_per_month",
                                             "accounting_start"};
    const struct bw_opts *o = &p->c->opts.bw;

    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        enum cfg_sect sect = s == TPM_NODE ? SECT_NODE : SECT_RELAY;

        if (o->burst[s] && !o->rate[s])
            return cfg_fail(p, p->key_line[cfg_key_find(sect, "burst") - cfg_keys],
                            "[%s] burst needs [%s] rate", s == TPM_NODE ? "node" : "relay",
                            s == TPM_NODE ? "node" : "relay") == 0;
    }
    for (size_t i = 0; i < sizeof(relay_keys) / sizeof(relay_keys[0]); i++) {
        unsigned line = p->key_line[cfg_key_find(SECT_RELAY, relay_keys[i]) - cfg_keys];

        if (line && !(p->c->roles & ROLE_RELAY))
            return cfg_fail(p, line, "[relay] %s needs the relay role (roles has no relay)",
                            relay_keys[i]) == 0;
    }
    return true;
}

static void cfg_finish(struct cfg_parse *p)
{
    struct ovl_config *c = p->c;
    unsigned dial;

    if (p->key_line[cfg_key_find(SECT_NODE, "data_dir") - cfg_keys])
        c->flags |= CFG_F_DATA_DIR;
    if (!cfg_named_complete(p, SECT_PEER, c->n_peers) ||
        !cfg_named_complete(p, SECT_BOOTSTRAP, c->n_bootstraps) ||
        !cfg_named_complete(p, SECT_SVC, c->client.n_services) || !cfg_services(p))
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
    if (!cfg_transports(p) || !cfg_hidden(p) || !cfg_bandwidth(p))
        return;
    if (c->dir.exit_policy.n && !(c->roles & ROLE_RELAY)) {
        cfg_fail(p, p->key_line[cfg_key_find(SECT_EXIT, "policy") - cfg_keys],
                 "[exit] policy needs the relay role (roles has no relay)");
        return;
    }
    if (c->dir.n_family && !(c->roles & ROLE_RELAY)) {
        cfg_fail(p, p->key_line[cfg_key_find(SECT_RELAY, "family") - cfg_keys],
                 "[relay] family needs the relay role (roles has no relay)");
        return;
    }
    if (c->client.n_socks && !(c->roles & ROLE_CLIENT)) {
        cfg_fail(p, p->socks_line[0], "[socks] listen needs the client role (roles has no client)");
        return;
    }
    if (p->socks_public && !c->client.socks_remote) {
        cfg_fail(p, p->socks_line[__builtin_ctz(p->socks_public)],
                 "[socks] listen '%s' is not a loopback address: anyone who reaches it could use "
                 "this node; set [socks] allow_remote = true to mean it",
                 c->client.socks[__builtin_ctz(p->socks_public)]);
        return;
    }
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
    c->intros = 2;
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

/* The parser's state (35 KiB) lives on the heap: on the stack its pages
 * would stay the daemon's for good, where the heap reuses them. */
static struct cfg_parse *cfg_alloc(char *err, size_t errlen)
{
    struct cfg_parse *p = malloc(sizeof(*p));

    if (!p)
        set_err(err, errlen, "config: out of memory");
    return p;
}

/* Read path into c, defaults first; see config.h for the errors. */
int config_load(struct ovl_config *c, const char *path, char *err, size_t errlen)
{
    struct cfg_parse *p = cfg_alloc(err, errlen);
    int rc = p ? cfg_start(c, p, path, err, errlen) : OVL_ENOMEM;

    if (rc)
        goto out;
    p->fp = fopen(path, "r");
    if (!p->fp) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        rc = OVL_ENOENT;
        goto out;
    }
    rc = cfg_run(p, path, err, errlen);
    fclose(p->fp);
out:
    free(p);
    return rc;
}

/* Parse a config held in memory; name stands for the file in messages. */
int config_parse_string(struct ovl_config *c, const char *name, const char *text, char *err,
                        size_t errlen)
{
    struct cfg_parse *p = cfg_alloc(err, errlen);
    int rc = p ? cfg_start(c, p, name, err, errlen) : OVL_ENOMEM;

    if (rc)
        goto out;
    if (!text) {
        set_err(err, errlen, "%s: no text", name);
        rc = OVL_EINVAL;
        goto out;
    }
    p->text = text;
    rc = cfg_run(p, name, err, errlen);
out:
    free(p);
    return rc;
}

/* Check what the roles need beyond the file; see config.h. A relay with
 * no bootstrap is only warned about (ovld): it still relays for whoever
 * dials it, but no directory lists it (and link-only test nodes run that
 * way). */
int config_check_roles(const struct ovl_config *c, char *err, size_t errlen)
{
    const char *why = NULL;

    if (c->relay_loop_ms && !(c->roles & ROLE_RELAY))
        why = "[relay] loop_interval needs the relay role (roles has no relay)";
    else if (c->n_bootstraps > 0)
        return 0;
    else if (c->roles & ROLE_CLIENT)
        why = "a client needs at least one [bootstrap.NAME]";
    else if (c->relay_loop_ms)
        why = "[relay] loop_interval needs at least one [bootstrap.NAME]";
    if (!why)
        return 0;
    set_err(err, errlen, "%s: %s", c->path, why);
    return OVL_EINVAL;
}

/* The mean gap of two Poisson processes of mean gaps a and b merged into
 * one (their rates add); 0 stands for none. */
static uint32_t loop_merge(uint32_t a, uint32_t b)
{
    uint64_t s = (uint64_t)a + b;

    return !a || !b ? a | b : (uint32_t)(((uint64_t)a * b + s / 2) / s);
}

/* Fill co with the options of the client code c runs; see config.h. */
bool config_client_opts(const struct ovl_config *c, struct client_opts *co)
{
    *co = c->client;
    if (!(c->roles & ROLE_RELAY) || !c->relay_loop_ms)
        return (c->roles & ROLE_CLIENT) != 0;
    if (c->roles & ROLE_CLIENT) {
        co->loop_interval_ms = loop_merge(co->loop_interval_ms, c->relay_loop_ms);
        return true;
    }
    co->flags |= CLIENT_O_COVER_ONLY;
    co->loop_interval_ms = c->relay_loop_ms;
    co->cover_interval_ms = 0;
    co->constant_rate = 0;
    co->n_socks = 0;
    co->n_services = 0;
    co->intros = 0;
    return true;
}
