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

enum cfg_sect { SECT_NONE, SECT_NODE, SECT_LOG, SECT_LINK, SECT_PEER };

struct cfg_parse;
struct key_def;

typedef int (*key_setter)(struct cfg_parse *p, const struct key_def *k, const char *v);

/* One key of one section. Integer keys store into struct node_opts at
 * off/width; path keys store into struct ovl_config at off, at most max bytes. */
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
static int set_level(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_syslog(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_uint(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_pow2(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_peer_address(struct cfg_parse *p, const struct key_def *k, const char *v);
static int set_peer_id(struct cfg_parse *p, const struct key_def *k, const char *v);

#define CFG_FIELD(f) offsetof(struct ovl_config, f), sizeof(((struct ovl_config *)0)->f)
#define OPT_FIELD(f) offsetof(struct node_opts, f), sizeof(((struct node_opts *)0)->f)

static const struct key_def key_defs[] = {
    {SECT_NODE, "roles", set_roles, false, false, 0, 0, 0, 0},
    {SECT_NODE, "data_dir", set_path, false, false, 0, PATH_MAX - 1, CFG_FIELD(data_dir)},
    {SECT_NODE, "listen", set_listen, true, false, 0, 0, 0, 0},
    {SECT_NODE, "control_socket", set_path, false, false, 0, SUN_PATH_MAX,
     CFG_FIELD(control_socket)},
    {SECT_NODE, "aead", set_aead, false, false, 0, 0, 0, 0},
    {SECT_LOG, "level", set_level, false, false, 0, 0, 0, 0},
    {SECT_LOG, "syslog", set_syslog, false, false, 0, 0, 0, 0},
    {SECT_LINK, "handshake_timeout", set_uint, false, false, 100, 600000,
     OPT_FIELD(handshake_timeout_ms)},
    {SECT_LINK, "idle_timeout", set_uint, false, true, 1000, 86400000, OPT_FIELD(idle_timeout_ms)},
    {SECT_LINK, "max_links", set_uint, false, false, 1, 65536, OPT_FIELD(max_links)},
    {SECT_LINK, "send_queue", set_uint, false, false, 16384, 67108864, OPT_FIELD(sendq_max)},
    {SECT_LINK, "rekey_cells", set_pow2, false, false, 16, UINT64_C(4294967296),
     OPT_FIELD(rekey_cells)},
    {SECT_LINK, "reconnect_min", set_uint, false, false, 100, 600000, OPT_FIELD(reconnect_min_ms)},
    {SECT_LINK, "reconnect_max", set_uint, false, false, 1000, 3600000,
     OPT_FIELD(reconnect_max_ms)},
    {SECT_PEER, "address", set_peer_address, false, false, 0, 0, 0, 0},
    {SECT_PEER, "id", set_peer_id, false, false, 0, 0, 0, 0},
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
    unsigned peer;                      /* index in c->peers while sect == SECT_PEER */
    unsigned key_line[KEY_COUNT];       /* line where a [node]/[log]/[link] key was set */
    unsigned peer_line[NODE_MAX_PEERS]; /* line of each [peer.NAME] header */
    unsigned peer_key_line[NODE_MAX_PEERS][KEY_COUNT];
    bool colon; /* the current line's first separator is ':' */
    bool failed;
    unsigned err_line;
    char msg[CONFIG_ERR_MAX];
};

static const char *const sect_names[] = {"", "node", "log", "link", "peer"};

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

    if (c->n_listen >= NODE_MAX_LISTEN)
        return cfg_fail(p, p->line, "too many listen addresses (at most %d)", NODE_MAX_LISTEN);
    int err = parse_address(p, k, v, &u);
    if (err)
        return err;
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

static int set_syslog(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v, yes[i]) == 0) {
            p->c->syslog = true;
            return 0;
        }
        if (strcmp(v, no[i]) == 0) {
            p->c->syslog = false;
            return 0;
        }
    }
    return cfg_fail(p, p->line, "bad boolean '%s' for %s (expected true, false, yes, no, 1 or 0)",
                    v, k->name);
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
    char *field = (char *)&p->c->opts + k->off;
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
    memcpy(&n, (char *)&p->c->opts + k->off, sizeof(n));
    if ((n & (n - 1)) != 0)
        return cfg_fail(p, p->line, "%s = %s is not a power of two", k->name, v);
    return 0;
}

static int set_peer_address(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct peer_spec *ps = &p->c->peers[p->peer];
    struct ovl_uri u;
    int err = parse_address(p, k, v, &u);

    if (err)
        return err;
    if (u.port == 0)
        return cfg_fail(p, p->line, "peer %s: address '%s' needs a port from 1 to 65535", ps->name,
                        v);
    return copy_value(p, k, ps->uri, sizeof(ps->uri), v);
}

static int set_peer_id(struct cfg_parse *p, const struct key_def *k, const char *v)
{
    struct peer_spec *ps = &p->c->peers[p->peer];

    (void)k;
    if (node_id_parse(ps->pk, v) != 0)
        return cfg_fail(p, p->line,
                        "peer %s: bad id '%s' (expected the %d-character node ID that "
                        "'ovld --print-id' prints)",
                        ps->name, v, OVL_NODE_ID_LEN);
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

/* Start a [peer.NAME] section. */
static void cfg_peer_begin(struct cfg_parse *p, const char *name)
{
    struct ovl_config *c = p->c;

    if (!peer_name_ok(name)) {
        cfg_fail(p, p->line, "bad peer name '%s' in [peer.%s] (1 to %d of A-Z a-z 0-9 _ -)", name,
                 name, PEER_NAME_MAX - 1);
        return;
    }
    for (unsigned i = 0; i < c->n_peers; i++) {
        if (strcmp(c->peers[i].name, name) == 0) {
            cfg_fail(p, p->line, "section [peer.%s] given twice (first on line %u)", name,
                     p->peer_line[i]);
            return;
        }
    }
    if (c->n_peers >= NODE_MAX_PEERS) {
        cfg_fail(p, p->line, "too many peers (at most %d)", NODE_MAX_PEERS);
        return;
    }
    p->peer = c->n_peers++;
    memcpy(c->peers[p->peer].name, name, strlen(name) + 1);
    p->peer_line[p->peer] = p->line;
    p->sect = SECT_PEER;
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
        cfg_peer_begin(p, p->sect_name + 5);
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
    unsigned *seen = p->sect == SECT_PEER ? &p->peer_key_line[p->peer][i] : &p->key_line[i];
    if (*seen && !k->repeat)
        return !cfg_fail(p, p->line, "duplicate key '%s' in [%s] (first on line %u)", name,
                         p->sect_name, *seen);
    *seen = p->line;
    return k->set(p, k, value) == 0;
}

/* Checks that need the whole file: required peer keys, cross-key limits. */
static void cfg_finish(struct cfg_parse *p)
{
    const struct ovl_config *c = p->c;
    size_t addr = (size_t)(key_find(SECT_PEER, "address") - key_defs);
    size_t id = (size_t)(key_find(SECT_PEER, "id") - key_defs);

    for (unsigned i = 0; i < c->n_peers; i++) {
        const char *missing = !p->peer_key_line[i][addr] ? "address"
                              : !p->peer_key_line[i][id] ? "id"
                                                         : NULL;
        if (missing) {
            cfg_fail(p, p->peer_line[i], "peer %s has no %s", c->peers[i].name, missing);
            return;
        }
    }
    if (c->opts.reconnect_max_ms < c->opts.reconnect_min_ms) {
        unsigned lmin = p->key_line[key_find(SECT_LINK, "reconnect_min") - key_defs];
        unsigned lmax = p->key_line[key_find(SECT_LINK, "reconnect_max") - key_defs];
        cfg_fail(p, lmin > lmax ? lmin : lmax,
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

/* Write the set roles as "bootstrap,relay,client" (in that order) or "none". */
void config_roles_format(char *out, size_t outlen, unsigned roles)
{
    static const struct {
        const char *name;
        unsigned bit;
    } order[] = {{"bootstrap", ROLE_BOOTSTRAP}, {"relay", ROLE_RELAY}, {"client", ROLE_CLIENT}};
    size_t used = 0;

    if (!out || outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(roles & order[i].bit))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", order[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            return; /* truncated but terminated */
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(out, outlen, "none");
}
