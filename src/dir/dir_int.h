/* dir_int.h - struct dir and what the files of the directory role share.
 * Private to src/dir/.
 *
 * The role is four files, each calling only the ones listed after it (and
 * registry.c, desc.c, dirmsg.c below them all):
 *   dir.c       the role: life cycle, cell handlers and link events, the
 *               client's requests (pending, retried, timed out, fired);
 *   dirreply.c  what a bootstrap's reply yields: documents and descriptors
 *               checked against its key and the request, and the caches
 *               they fill (lookups, the relay list);
 *   dirpub.c    publishing ourselves: onion keys, our descriptor,
 *               registering with bootstraps, heartbeats, key rotation;
 *   dirsrv.c    the bootstrap serving requests from its registry and its
 *               hold of inbound descriptors (ihold.c), within what each
 *               address block may cost it (dblock.c), and expiring silent
 *               nodes and expired inbound descriptors;
 *   dsync.c     a bootstrap among several: DIR_SYNC asked of and answered
 *               to the other configured bootstraps, the registry on disk,
 *               the warning when the registry is full (called by dir.c and
 *               dirsrv.c, calling neither);
 *   dirstore.c  the last good relay list on disk (<data_dir>/relays):
 *               read at start, written when a newer one came (called by
 *               dir.c and dirreply.c, calls none of them).
 * Once dir_init has set it up and until dir_free, each group of fields in
 * struct dir is written only by the file that heads it, except the
 * counters (st: by whoever does what they count) and next_id
 * (dirmsg_next_id: by whoever sends a request). dir.c allocates every
 * timer (dir_init) and closes them (dir_stop, dir_free); the file that
 * owns a timer starts it.
 */
#ifndef OVL_DIR_DIR_INT_H
#define OVL_DIR_DIR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/htab.h"
#include "lib/statefile.h"
#include "dir/dir.h"
#include "dir/dblock.h"
#include "dir/dirmsg.h"
#include "dir/ihold.h"

/* A request carries at most a descriptor (DIR_REGISTER) plus the op byte;
 * an inbound descriptor (DIR_IDESC) is shorter. */
#define DIR_REQ_MAX_LEN (1 + DESC_MAX_LEN)
_Static_assert(1 + IDESC_MAX_LEN <= DIR_REQ_MAX_LEN, "a DIR_IDESC request must fit");

/* Reassembly state of one link: one message each way at a time (dir.c),
 * and the link's request bucket (dirsrv.c). */
struct dir_rx {
    uint64_t serial; /* link->serial */
    struct dirmsg_rx req, rep;
    uint64_t tat_ms; /* GCRA: when the link's bucket is full again (monotonic) */
    UT_hash_handle hh;
};

/* A configured bootstrap and our registration with it (dirpub.c). */
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
    uint8_t msg[5 + OVL_ED25519_PK]; /* the whole request message */
    size_t msg_len;
    union {
        dir_chain_cb chain;
        dir_chains_cb chains; /* with many */
        dir_lookup_cb lookup;
        dir_list_cb list;
    } cb;
    void *arg;
    unsigned length, backups;
    unsigned count;             /* chains asked: 1..DIR_MAX_CHOICES */
    bool many;                  /* dir_request_chains: cb.chains */
    uint8_t pk[OVL_ED25519_PK]; /* lookup target or chain exclude */
    bool has_pk;
    uint64_t deadline; /* monotonic: end of the current attempt or wait */
    uint64_t serial;   /* link the request went out on, 0 while waiting */
    int bs;            /* index of the bootstrap asked, -1 while waiting */
    uint32_t tried;    /* bootstraps that failed it (bit per index) */
    int err;           /* the result once done, else the last failure */
    struct dir_chain *chain;
    unsigned n_chains;
    struct desc *descs;
    unsigned n_descs;
    struct idesc *in; /* lookup: a hidden node's inbound descriptor, instead of descs */
};

/* A cached lookup result. */
struct dir_cache_ent {
    struct desc d; /* key: d.id_pk */
    uint64_t until_ms;
    UT_hash_handle hh;
};

/* What lookups told us of a hidden node: its inbound descriptor while it
 * may be used from the cache, and the seq of the newest one we took, kept
 * after that (forgotten, timed out) so that no older one is taken again. */
struct dir_icache_ent {
    uint8_t pk[OVL_ED25519_PK]; /* key */
    struct idesc in;            /* the newest taken; served while until_ms is ahead */
    uint64_t until_ms;          /* monotonic; 0: not to be served, only seq kept */
    uint64_t seq;               /* in.seq, kept after until_ms */
    UT_hash_handle hh;
};

/* The role's life: it only moves forward (dir_set_state in dir.c). */
enum dir_state {
    DIR_NEW,      /* created; the loop has not turned yet */
    DIR_RUNNING,  /* the first turn ran: node_start has bound our addresses */
    DIR_STOPPING, /* dir_stop ran: no new requests, timers closing */
};

/* Bits of struct dir's flags (the first two dirpub.c's, the last dirreply.c's). */
enum {
    DIR_F_REGISTERED = 1u << 0,   /* a bootstrap (or our own registry) accepted us */
    DIR_F_SAID_NO_DESC = 1u << 1, /* "not publishing a descriptor" was logged */
    DIR_F_LIST_ASKED = 1u << 2,   /* the relay list was asked for once registered */
};

struct dir {
    struct node *n;
    struct dir_opts o;
    enum dir_state state; /* dir.c */
    unsigned flags;       /* DIR_F_* */
    struct dir_stats st;  /* each counter by the file that does what it counts */

    /* dir.c: reassembly, requests and the timers that drive them. The kick
     * runs on the loop's next turn: first the role's start, then the
     * callbacks of requests done; NULL once closed. */
    struct dir_rx *rx;
    struct dir_req *pending, *done, *firing;
    unsigned n_pending;
    uint32_t next_id; /* dirmsg_next_id: requests, registrations, heartbeats */
    uv_timer_t *kick, *tick;

    /* dirreply.c: the caches */
    struct dir_cache_ent *lookups;   /* in insertion order: oldest first */
    struct dir_icache_ent *ilookups; /* likewise, for hidden nodes */
    struct desc *list;               /* the last verified relay list (live descriptors) */
    unsigned n_list;
    uint64_t list_until;   /* monotonic: answered from the cache until then */
    uint64_t list_expires; /* wall clock: its document's expiry; the fallback until then */
    uint64_t list_next_ms; /* monotonic: when the list is fetched again (dir_list_due) */

    /* dirpub.c: bootstraps, onion keys, our descriptor */
    struct dir_bs bs[DIR_MAX_BOOTSTRAPS];
    unsigned n_bs;
    struct dir_onion onion[DIR_MAX_ONION];
    unsigned n_onion;
    uint8_t desc_raw[1 + DESC_MAX_LEN]; /* DIR_REGISTER | our signed descriptor */
    size_t desc_len;                    /* descriptor bytes, 0 if none */
    uint64_t desc_expires_ms;           /* wall clock */
    uint32_t desc_capacity;             /* what it claims, KiB/s (dir_desc_state) */
    uint8_t desc_dormant;               /* whether it says DORMANT */
    uv_timer_t *heartbeat, *rotate;

    /* dirstore.c: the relay list on disk (store.path NULL: none kept) */
    struct statefile store;
    uint64_t store_saved_ms;     /* monotonic: last write asked for; 0 none */
    uint64_t store_published_ms; /* wall: publication time of the list written last (or read) */
    unsigned store_relays;       /* relays that list names */

    /* dirsrv.c: bootstrap only */
    struct registry *reg;
    struct ihold *hold; /* hidden nodes' inbound descriptors */

    struct dblocks *blocks; /* per address block buckets (dblock.h) */
    uv_timer_t *expire;
    uint64_t expire_prev_ms; /* monotonic: the expiry check before, 0 none yet */
    uint8_t *list_doc;       /* the signed relay list last built, or NULL */
    size_t list_doc_len;
    uint64_t list_version; /* registry_version() it was built from */
    uint64_t list_built_ms;
    uint64_t list_tat_us; /* the list budget (dirsrv.c): full again from then, 0 full */

    /* dsync.c: bootstrap only */
    struct dir_sync_ask {
        uint32_t id;      /* outstanding DIR_SYNC to bootstrap i, 0 if none */
        uint64_t sent_ms; /* monotonic */
    } sync[DIR_MAX_BOOTSTRAPS];
    uv_timer_t *sync_timer;
    uint8_t *sync_doc; /* the DOC_SYNC signed last, or NULL */
    size_t sync_doc_len;
    uint64_t sync_version; /* registry_direct_version() it was built from */
    uint64_t sync_built_ms;
    struct statefile regfile; /* <data_dir>/registry */
    uint64_t reg_saved;       /* registry_direct_version() written last */
    uint64_t full_warned_ms;  /* when "registry full" was logged last, 0 never */
};

/* True once dir_stop ran. */
static inline bool dir_stopping(const struct dir *d)
{
    return d->state == DIR_STOPPING;
}

/* ---- dirreply.c -------------------------------------------------------- */

/* Return the error a reply status other than DIR_STATUS_OK stands for. */
int dir_status_err(uint8_t status);

/* Check the result of a DIR_STATUS_OK reply to r (res: res_len bytes after
 * op | status, lent) from the bootstrap with key bs_pk, and on success set
 * r->chain, r->descs / r->n_descs, or r->in (a lookup answered by an
 * inbound descriptor) (malloc'd, r's) and fill the caches. OVL_EPROTO /
 * OVL_ECRYPTO for a reply that does not hold, OVL_ENOMEM. */
int dir_reply_check(struct dir *d, struct dir_req *r, const uint8_t *res, size_t res_len,
                    const uint8_t bs_pk[OVL_ED25519_PK]) OVL_WUR;

/* Answer r from the caches if they can: 1 with r->descs set (lookup:
 * pk's descriptor; list: the relay list) or r->in (lookup: pk's inbound
 * descriptor), 0 when r must ask a bootstrap. */
int dir_cache_answer(struct dir *d, struct dir_req *r);

/* Empty the caches (dir_free). */
void dir_caches_free(struct dir *d);

/* Take the relay list read from disk (raw: len bytes, lent) if one of the
 * configured bootstraps signed it and it has not expired: it is then the
 * fallback list (dir_list_fallback), not a fresh one. 0, or why not. */
int dir_list_restore(struct dir *d, const uint8_t *raw, size_t len) OVL_WUR;

/* Whether a request that failed with err found no bootstrap that
 * answered it (timed out, link closed, bad or busy reply), rather than one
 * that said no: then the last good relay list may answer it. */
static inline bool dir_unanswered(const struct dir *d, int err)
{
    return !dir_stopping(d) && (err == OVL_ETIMEDOUT || err == OVL_ECLOSED || err == OVL_EPROTO ||
                                err == OVL_ECRYPTO || err == OVL_EAGAIN);
}

/* Answer list request r, which no bootstrap answered, from the last
 * verified list while its document has not expired (its expired
 * descriptors left out): 1 with r->descs set (counted), else 0. */
int dir_list_fallback(struct dir *d, struct dir_req *r);

/* Answer lookup r, which no bootstrap answered, from the last verified
 * relay list while it lasts, when it lists r->pk unexpired, else from the
 * lookup cache past its 60 s while the descriptor has not expired: 1 with
 * r->descs set (counted), else 0. */
int dir_lookup_fallback(struct dir *d, struct dir_req *r);

/* True when a node with bootstraps (not one itself) should fetch the
 * relay list now, to keep its last good one fresh: every
 * DIR_LIST_REFRESH_MS (10 min), or half the time its list has left if
 * sooner, but not more than once every 30 s. Schedules the next one. */
bool dir_list_due(struct dir *d, uint64_t now);

/* ---- dirpub.c ---------------------------------------------------------- */

/* Make a new current onion key; the previous one starts its overlap. */
void dir_onion_new(struct dir *d);

/* False (and logged) when o's family names node n itself: dir_init
 * refuses such options, as desc_sign would refuse our descriptor. */
bool dir_family_ok(struct node *n, const struct dir_opts *o);

/* Start the heartbeat and rotation timers. */
void dir_publish_start(struct dir *d);

/* Register our descriptor in our own registry (bootstrap that also relays). */
void dir_self_register(struct dir *d, bool force);

/* Send our descriptor to bootstrap i over l. */
void dir_register_with(struct dir *d, unsigned i, struct link *l);

/* Handle the reply to a registration or heartbeat from bootstrap i. */
void dir_on_reg_reply(struct dir *d, unsigned i, struct link *l, uint32_t id, uint8_t status);

/* Our last link to bootstrap i closed: it must hear our descriptor again. */
void dir_bs_unlinked(struct dir *d, unsigned i);

/* Sign a new descriptor now (its contents changed: dir_reconfigure) and
 * register it with every linked bootstrap and our own registry. */
void dir_publish_again(struct dir *d);

/* Make bs (n of them) the bootstraps; from[i] is the index among the old
 * ones of the same bootstrap, whose registration state it keeps, or -1. */
void dir_bs_replace(struct dir *d, const struct dir_bootstrap_spec *bs, unsigned n,
                    const int *from);

/* ---- dirstore.c -------------------------------------------------------- */

/* Prepare <state_dir>/relays and read it into *buf (malloc'd, *len bytes):
 * 0, OVL_ENOENT when there is none (or no state_dir), or the read's error. */
int dir_store_open(struct dir *d, uint8_t **buf, size_t *len) OVL_WUR;

/* Write the relay list raw (len bytes, verified; published_ms and
 * expires_ms from its document, naming relays relays) when it is newer
 * than the one on disk and the last write is old enough (dirstore.c says
 * how old), or names more relays than it. */
void dir_store_save(struct dir *d, const uint8_t *raw, size_t len, uint64_t published_ms,
                    uint64_t expires_ms, unsigned relays);

/* Free the file's state once the loop has ended (NULL-safe inside). */
void dir_store_free(struct dir *d);

/* ---- dirsrv.c ---------------------------------------------------------- */

/* Start the expiry timer (bootstrap only; nothing on other nodes). */
void dir_serve_start(struct dir *d);

/* Build the reply to request msg from the peer of link l, or from
 * ourselves when l is NULL (a bootstrap answers from its registry, anyone
 * else refuses). *out is malloc'd: op | status | result. */
int dir_answer(struct dir *d, struct link *l, const uint8_t *msg, size_t len, uint8_t **out,
               size_t *out_len) OVL_WUR;

/* A registry walk: registry_each_relay or registry_each_direct. */
typedef void (*dir_each_fn)(const struct registry *r,
                            void (*fn)(void *arg, const struct reg_node *n), void *arg);

/* Sign the nodes each walks (their descriptors as registered) into a
 * document of kind, expiring life_ms after now on the wall clock, in place
 * of *doc (freed; malloc'd anew, the caller's). Past DOC_MAX_LEN the
 * document is cut short. 0, OVL_ENOMEM or a signing error. */
int dir_sign_nodes(struct dir *d, enum doc_kind kind, dir_each_fn each, uint32_t life_ms,
                   uint8_t **doc, size_t *len) OVL_WUR;

/* Answer request id from l (rx: l's state): BUSY over l's request rate,
 * dropping (and counting) the reply if l is full. */
void dir_serve(struct dir *d, struct link *l, struct dir_rx *rx, uint32_t id, const uint8_t *msg,
               size_t len);

/* A link closed (after it had opened): on a bootstrap, drop its peer if no
 * other link to it remains. */
void dir_serve_link_closed(struct dir *d, struct link *l);

/* ---- dsync.c ----------------------------------------------------------- */

/* Bootstrap only: prepare <data_dir>/registry and load what it holds into
 * d->reg (before the loop runs). OVL_ENOMEM; a missing or bad file is no
 * error (logged). */
int dsync_init(struct dir *d) OVL_WUR;

/* Start the sync timer (every heartbeat: ask, and save the registry). */
void dsync_start(struct dir *d);

/* dir_stop: write the registry if it changed since the last write. */
void dsync_stop(struct dir *d);

/* Free the cached document and the state file (dir_free). */
void dsync_free(struct dir *d);

/* A link to bootstrap i opened: ask it for its nodes now. */
void dsync_linked(struct dir *d, unsigned i, struct link *l);

/* The bootstraps are being replaced (dir_bs_replace): the sync asked of
 * new bootstrap i is what was asked of old one from[i] (nothing when -1). */
void dsync_remap(struct dir *d, const int *from, unsigned n);

/* If id is our DIR_SYNC to bootstrap i, take its reply msg (len bytes)
 * and return true; else false. */
bool dsync_on_reply(struct dir *d, unsigned i, uint32_t id, const uint8_t *msg, size_t len);

/* Answer DIR_SYNC (arg_len bytes after the op) from l's peer (NULL: from
 * ourselves): a DIR_STATUS_* with *res (malloc'd) the DOC_SYNC on OK. */
int dsync_serve(struct dir *d, struct link *l, size_t arg_len, uint8_t **res,
                size_t *res_len) OVL_WUR;

/* A registration was refused at max_nodes: warn, once a minute at most. */
void dsync_registry_full(struct dir *d);

#endif
