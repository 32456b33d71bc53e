/* guard.h - a client's entry guards (docs/PROTOCOL.md 19.14): the few
 * relays that are hop 0 of every chain it builds, kept for weeks.
 *
 * Without guards every chain's first hop is drawn afresh, so over many
 * chains a client is bound to enter through a relay of any adversary
 * that runs a fraction of them, which then sees the client's address
 * beside the chain. With guards (Tor's prop 271 is the anchor, kept
 * simple), the client samples `want` relays once from the signed relay
 * list and keeps them: an adversary's relays either are among them from
 * the start or, mostly, never are.
 *
 * The set is ordered: the first guard that is usable (listed in the last
 * relay list, and not failing: a chain could not reach it and its retry
 * time has not come) is hop 0 of every chain; the ones after it back it
 * up. A guard is replaced only when it has been unlisted or failing
 * without a break for down_ms, or when its lifetime (drawn uniformly in
 * life_ms .. 2 x life_ms when it was sampled) ends. When no guard is
 * usable the set grows by one more sampled relay, up to twice want,
 * rather than drawing a fresh first hop per chain. Times are wall-clock
 * milliseconds given by the caller, so the rules are tested without
 * waiting.
 *
 * The set lives in <data_dir>/guards (lib/statefile.h): one line per
 * guard, in order, "hex-id added expires bad-since", under a first line
 * "ovl-guards 1". It is written whenever the set or a guard's bad-since
 * changes, read at start; a file that does not parse whole is ignored.
 */
#ifndef OVL_CLIENT_GUARD_H
#define OVL_CLIENT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dir/desc.h"
#include "dir/select.h"
#include "lib/statefile.h"

#define GUARD_WANT_MAX  8                    /* [client] guards at most */
#define GUARD_MAX       (2 * GUARD_WANT_MAX) /* held at most: twice want when none is usable */
#define GUARD_RETRY_MS  30000u  /* a failing guard is tried again after this, doubling */
#define GUARD_RETRY_MAX 600000u /* up to ten minutes */
#define GUARD_FILE_MAX  4096    /* bytes of <data_dir>/guards read at most */

/* struct guard's flags. */
enum guard_flag {
    GF_LISTED = 1u << 0,  /* in the last relay list: d is its descriptor there */
    GF_FAILING = 1u << 1, /* a chain could not reach it: not used before retry_ms */
};

struct guard {
    uint8_t id[OVL_ED25519_PK];
    uint64_t added_ms;     /* sampled (wall clock, as every time here) */
    uint64_t expires_ms;   /* replaced from then on: added_ms + a random lifetime */
    uint64_t bad_since_ms; /* unlisted or failing without a break since; 0 while good */
    uint64_t retry_ms;     /* with GF_FAILING: usable again from then */
    uint32_t fails;        /* failures in a row: the retry wait doubles with each */
    unsigned flags;        /* enum guard_flag */
    struct desc d;         /* with GF_LISTED */
};

struct guard_opts {
    unsigned want;                /* [client] guards: 1..GUARD_WANT_MAX */
    uint64_t down_ms;             /* [client] guard_down: replaced after this long bad */
    uint64_t life_ms;             /* [client] guard_lifetime: lifetime drawn in [L, 2L] */
    bool distinct_subnets;        /* [chain] distinct_subnets: guards of distinct subnets */
    bool by_capacity;             /* [chain] weighting = capacity */
    uint8_t suites;               /* our AEAD suites: a guard must share one */
    uint8_t self[OVL_ED25519_PK]; /* never our own relay */
};

struct guard_stats {
    uint64_t sampled;      /* relays taken into the set */
    uint64_t dropped_down; /* guards replaced after down_ms unlisted or failing */
    uint64_t dropped_old;  /* guards replaced at the end of their lifetime */
    uint64_t failures;     /* chains that could not reach a guard (guard_failed) */
    uint64_t loaded;       /* guards read from <data_dir>/guards at start */
};

struct guard_set {
    struct guard_opts o;
    struct guard g[GUARD_MAX]; /* in order: g[0] is preferred */
    unsigned n;
    bool have_list; /* a relay list was seen since start: listed flags hold */
    struct guard_stats st;
    struct statefile file; /* file.path NULL: nothing kept */
};

/* Whether relays a and b may not share a chain: one is the other, they
 * are one family, or (with the subnet rule) they share a subnet. */
bool guard_related(const struct desc *a, const struct desc *b, bool distinct_subnets);

/* Set gs up empty with o; nothing is kept on disk until guard_open. */
void guard_init(struct guard_set *gs, const struct guard_opts *o);

/* Keep gs in <state_dir>/guards (state_dir NULL: nowhere) and read the
 * guards there (decoded as guard_decode). 0, OVL_ENOENT for no file, or
 * why the file was not taken. Synchronous: before the loop runs. */
int guard_open(struct guard_set *gs, uv_loop_t *loop, const char *state_dir) OVL_WUR;

/* Free the file's state once the loop has ended (NULL-safe). */
void guard_close(struct guard_set *gs);

/* Encode gs's guards into out (cap bytes); the length, or 0 when it does
 * not fit. */
size_t guard_encode(const struct guard_set *gs, char *out, size_t cap);

/* Replace gs's guards by those of buf (len bytes, from our file: checked
 * anyway); none of them is listed until guard_update. Guards past their
 * lifetime at now are left out. 0, or OVL_EPROTO with gs unchanged. */
int guard_decode(struct guard_set *gs, const uint8_t *buf, size_t len, uint64_t now) OVL_WUR;

/* A relay list came (relays: n verified descriptors): note which guards
 * it lists, replace those bad for down_ms or past their lifetime, sample
 * relays until gs holds want guards, and more (up to GUARD_MAX) while none
 * is usable. Written to the file when anything kept there changed. */
void guard_update(struct guard_set *gs, const struct desc *relays, unsigned n, uint64_t now);

/* Fill out (max entries) with the usable guards, in order, that may be
 * hop 0 before a chain's pinned last hop (NULL: none) and that are not
 * avoid (NULL: nothing): the first is the one to use, the rest its
 * backups. Returns how many. */
unsigned guard_usable(const struct guard_set *gs, uint64_t now, const struct desc *pinned,
                      const uint8_t *avoid, const struct guard **out, unsigned max);

/* Whether pk is one of the guards. */
bool guard_is(const struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK]);

/* A chain could not reach guard pk (its link would not open or closed):
 * it is not used before its retry time (GUARD_RETRY_MS, doubling). */
void guard_failed(struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK], uint64_t now);

/* A chain through guard pk became ready: it is good again. */
void guard_succeeded(struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK]);

#endif
