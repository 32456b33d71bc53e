/* dir_int.h - what dir.c (requests, API) and dirsrv.c (publishing our
 * descriptor and the bootstrap server) share. Private to src/dir/.
 */
#ifndef OVL_DIR_DIR_INT_H
#define OVL_DIR_DIR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/htab.h"
#include "dir/dir.h"
#include "dir/dirmsg.h"

/* A request carries at most a descriptor (DIR_REGISTER) plus the op byte. */
#define DIR_REQ_MAX_LEN (1 + DESC_MAX_LEN)

/* Reassembly state of one link: one message each way at a time. */
struct dir_rx {
    uint64_t serial; /* link->serial */
    struct dirmsg_rx req, rep;
    UT_hash_handle hh;
};

/* A configured bootstrap and our registration with it. */
struct dir_bs {
    struct dir_bootstrap_spec spec;
    uint32_t reg_id, hb_id; /* outstanding DIR_REGISTER / DIR_HEARTBEAT, 0 if none */
    bool registered;        /* it accepted our current descriptor */
};

/* A client request (chain, list, lookup), pending or done. */
struct dir_req {
    struct dir_req *prev, *next; /* utlist */
    uint32_t id;
    uint8_t op;
    uint8_t msg[3 + OVL_ED25519_PK]; /* the whole request message */
    size_t msg_len;
    union {
        dir_chain_cb chain;
        dir_lookup_cb lookup;
        dir_list_cb list;
    } cb;
    void *arg;
    unsigned length, backups;
    uint8_t pk[OVL_ED25519_PK]; /* lookup target or chain exclude */
    bool has_pk;
    uint64_t deadline; /* monotonic: end of the current attempt or wait */
    uint64_t serial;   /* link the request went out on, 0 while waiting */
    int bs;            /* index of the bootstrap asked, -1 while waiting */
    uint32_t tried;    /* bootstraps that failed it (bit per index) */
    int err;           /* the result once done, else the last failure */
    struct dir_chain *chain;
    struct desc *descs;
    unsigned n_descs;
};

/* A cached lookup result. */
struct dir_cache_ent {
    struct desc d; /* key: d.id_pk */
    uint64_t until_ms;
    UT_hash_handle hh;
};

struct dir {
    struct node *n;
    struct dir_opts o;
    struct dir_bs bs[DIR_MAX_BOOTSTRAPS];
    unsigned n_bs;
    struct registry *reg; /* bootstrap only */

    struct dir_rx *rx;
    struct dir_req *pending, *done, *firing;
    unsigned n_pending;
    uint32_t next_id;

    struct dir_cache_ent *lookups; /* in insertion order: oldest first */
    struct desc *list;             /* cached relay list */
    unsigned n_list;
    uint64_t list_until;

    struct dir_onion onion[DIR_MAX_ONION];
    unsigned n_onion;
    uint8_t desc_raw[1 + DESC_MAX_LEN]; /* DIR_REGISTER | our signed descriptor */
    size_t desc_len;                    /* descriptor bytes, 0 if none */
    uint64_t desc_expires_ms;           /* wall clock */

    bool registered, said_no_desc, stopping, started, kick_closed;
    uv_timer_t kick, tick, heartbeat, rotate, expire;
    unsigned open_handles;
    struct dir_stats st;
};

/* Return a fresh non-zero request ID. */
uint32_t dir_next_id(struct dir *d);

/* Return the index of the bootstrap with key pk, or -1. */
int dir_bs_index(const struct dir *d, const uint8_t pk[OVL_ED25519_PK]);

/* Send a whole message as fragments on l, or nothing (OVL_EAGAIN). */
int dir_send(struct link *l, uint8_t cmd, uint32_t id, const uint8_t *msg, size_t len) OVL_WUR;

/* Start the heartbeat, rotation and (bootstrap) expiry timers. */
void dir_publish_start(struct dir *d);

/* Make a new current onion key; the previous one starts its overlap. */
void dir_onion_new(struct dir *d);

/* Register our descriptor in our own registry (bootstrap that also relays). */
void dir_self_register(struct dir *d, bool force);

/* Send our descriptor to bootstrap i over l. */
void dir_register_with(struct dir *d, unsigned i, struct link *l);

/* Handle the reply to a registration or heartbeat from bootstrap i. */
void dir_on_reg_reply(struct dir *d, unsigned i, struct link *l, uint32_t id, uint8_t status);

/* Build the reply to request msg from peer (a bootstrap answers from its
 * registry, anyone else refuses). *out is malloc'd: op | status | result. */
int dir_answer(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *msg, size_t len,
               uint8_t **out, size_t *out_len) OVL_WUR;

/* Answer request id from l, dropping (and counting) the reply if l is full. */
void dir_serve(struct dir *d, struct link *l, uint32_t id, const uint8_t *msg, size_t len);

#endif
