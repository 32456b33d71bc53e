/* config_int.h - what the two halves of the config parser share (not a
 * public API).
 *
 * config.c is the reader: lines, sections, the libinih callback, the checks
 * that need the whole file, and config_load(). config_keys.c is what each
 * key means: the table cfg_keys[] and the setters that check a value and
 * store it into struct ovl_config. A setter returns 0, or cfg_fail()'s
 * OVL_EINVAL after recording the message.
 */
#ifndef OVL_APP_CONFIG_INT_H
#define OVL_APP_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app/config.h"

#define CFG_SECT_NAME_MAX 64
#define CFG_KEY_COUNT     104 /* rows of cfg_keys[]; config_keys.c asserts it */

/* Plain sections first, then the named ones ([peer.NAME], [bootstrap.NAME],
 * [service.NAME]). */
enum cfg_sect {
    SECT_NONE,
    SECT_NODE,
    SECT_LOG,
    SECT_LINK,
    SECT_DIR,
    SECT_CHAIN,
    SECT_CLIENT,
    SECT_RELAY,
    SECT_EXIT,
    SECT_SOCKS,
    SECT_SERVICE,
    SECT_METRICS,
    SECT_PEER,
    SECT_BOOTSTRAP,
    SECT_SVC /* [service.NAME] */
};

struct cfg_parse;
struct key_def;

typedef int (*key_setter)(struct cfg_parse *p, const struct key_def *k, const char *v);

/* What a reload does with a key whose value changed (the bits of
 * key_def.reload; reload.c has one step per bit but RL_RESTART, run in
 * this order, the order of the layers). A key is either RL_RESTART or
 * names the steps that apply it, and every key is one or the other
 * (test_reload checks it). */
enum cfg_reload {
    RL_RESTART = 1u << 0, /* takes a restart: the running value is kept, with a warning */
    RL_LOG = 1u << 1,     /* the node's log: level, syslog */
    RL_NODE = 1u << 2,    /* node_reconfigure and peer_reconfigure (core) */
    RL_DIR = 1u << 3,     /* dir_reconfigure */
    RL_RELAY = 1u << 4,   /* relay_reconfigure */
    RL_CLIENT = 1u << 5,  /* client_reconfigure, and control's defaults of its commands */
    RL_APP = 1u << 6,     /* the app's own listeners */
};

/* One key of one section; its name is cfg_key_name(). Integer and path
 * keys store into struct ovl_config at off/width; a path takes at most max
 * bytes. Every key names its field there (the span of an array and its
 * count, for keys that fill one), which a reload compares and, for a key
 * that takes a restart, keeps. The fields are as narrow as their values
 * allow and there is no pointer: the table lives in the binary, one
 * 16-byte row a key (the size budget). */
struct key_def {
    uint32_t max; /* the largest value is max << max_shift */
    uint32_t min;
    uint16_t off;
    uint16_t width;
    uint8_t sect;           /* enum cfg_sect */
    uint8_t set;            /* which setter checks and stores the value (cfg_set) */
    unsigned repeat : 1;    /* may be given more than once (listen) */
    unsigned zero_ok : 1;   /* 0 is accepted besides min..max (idle_timeout) */
    unsigned max_shift : 6; /* for maxima past 32 bits (max_queued) */
    unsigned reload : 8;    /* enum cfg_reload bits: what a reload does when it changed */
};

/* Check and store v for key k with the key's setter; 0 or negative. */
int cfg_set(struct cfg_parse *p, const struct key_def *k, const char *v);

/* Return key k's name (static). */
const char *cfg_key_name(const struct key_def *k);

/* Return the key called name in section sect, or NULL. */
const struct key_def *cfg_key_find(enum cfg_sect sect, const char *name);

/* Every key of every section, CFG_KEY_COUNT rows (config_keys.c). */
extern const struct key_def cfg_keys[];

/* State of one parse, shared by the line reader, the key handler and the
 * setters. */
struct cfg_parse {
    struct ovl_config *c;
    FILE *fp;         /* the source is either a file ... */
    const char *text; /* ... or a string */
    size_t pos;
    unsigned line; /* physical line last handed to libinih (libinih counts alike) */
    enum cfg_sect sect;
    char sect_name[CFG_SECT_NAME_MAX];
    unsigned peer; /* index in c->peers, c->bootstraps or c->client.services (named sections) */
    unsigned key_line[CFG_KEY_COUNT];   /* line where a key of a plain section was set */
    unsigned peer_line[NODE_MAX_PEERS]; /* line of each [peer.NAME] header */
    unsigned peer_key_line[NODE_MAX_PEERS][CFG_KEY_COUNT];
    unsigned boot_line[DIR_MAX_BOOTSTRAPS]; /* line of each [bootstrap.NAME] header */
    unsigned boot_key_line[DIR_MAX_BOOTSTRAPS][CFG_KEY_COUNT];
    unsigned svc_line[CLIENT_MAX_SERVICES]; /* line of each [service.NAME] header */
    unsigned svc_key_line[CLIENT_MAX_SERVICES][CFG_KEY_COUNT];
    unsigned listen_line[NODE_MAX_LISTEN]; /* line of each listen value */
    unsigned listen_any;                   /* bit i: listen[i] named no transport */
    unsigned socks_line[CLIENT_MAX_SOCKS]; /* line of each [socks] listen */
    unsigned socks_public;                 /* bit i: socks[i] is not a loopback address */
    const char *key;                       /* name of the key being set, for messages */
    bool colon;                            /* the current line's first separator is ':' */
    bool failed;
    unsigned err_line;
    char msg[CONFIG_ERR_MAX];
};

/* Record the parse's error at line (only the first one counts) and return
 * OVL_EINVAL. */
int cfg_fail(struct cfg_parse *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Return the name of section kind sect ("node", "peer", ...). */
const char *cfg_sect_name(enum cfg_sect sect);

/* Return the scheme ("tcp", "quic") whose tp_bit() is bit, or "?". */
const char *cfg_tp_scheme(unsigned bit);

#endif
