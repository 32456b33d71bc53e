/* idesc.h - inbound descriptors: how to reach a hidden destination.
 *
 * A hidden destination receives without revealing its address: its inbound
 * chains end at introduction relays, and it publishes an inbound
 * descriptor, signed with its identity, naming those relays and the cookie
 * each one knows it by (docs/PROTOCOL.md, "Hidden destinations"). Nothing
 * carries one yet; this module is the format and the rules that a
 * bootstrap and a sender apply to it.
 *
 * Wire format (all integers little-endian, times wall-clock ms since the
 * Unix epoch):
 *   version(1)=1 | flags(1)=0 | suites(1) | n_intro(1) | seq(8) |
 *   published_ms(8) | expires_ms(8) | id_pk(32) | onion_pk(32) |
 *   n_intro x (relay_pk(32) | cookie(16)) | sig(64)
 * n_intro is 1..IDESC_MAX_INTRO, so a descriptor is exactly
 * IDESC_LEN(n_intro) bytes, IDESC_MIN_LEN..IDESC_MAX_LEN. sig is Ed25519
 * by id_pk over IDESC_SIG_DOMAIN (its 12 ASCII bytes, no NUL) followed by
 * every byte before sig: no other object the project signs begins with
 * those bytes, so none verifies as an inbound descriptor.
 *
 * Pure functions: no allocation, no clock of their own, nothing kept
 * between calls. Buffers are the caller's.
 */
#ifndef OVL_DIR_IDESC_H
#define OVL_DIR_IDESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

#define IDESC_VERSION     1
#define IDESC_MAX_INTRO   4
#define IDESC_COOKIE_LEN  16
#define IDESC_FIXED_LEN   (4 + 8 + 8 + 8 + 32 + 32)
#define IDESC_INTRO_LEN   (OVL_ED25519_PK + IDESC_COOKIE_LEN)
#define IDESC_LEN(n)      (IDESC_FIXED_LEN + (size_t)(n)*IDESC_INTRO_LEN + OVL_SIG_LEN)
#define IDESC_MIN_LEN     IDESC_LEN(1)
#define IDESC_MAX_LEN     IDESC_LEN(IDESC_MAX_INTRO)
#define IDESC_MAX_LIFE_MS (60 * 60 * 1000ull) /* expires_ms - published_ms at most */
#define IDESC_SKEW_MS     (5 * 60 * 1000ull)  /* published_ms may be this far ahead */
#define IDESC_SIG_DOMAIN  "ovl-idesc-v1"      /* prepended to what is signed */

/* One introduction relay and the cookie that names the node there. */
struct idesc_intro {
    uint8_t relay_pk[OVL_ED25519_PK];
    uint8_t cookie[IDESC_COOKIE_LEN];
};

/* A decoded (and, once idesc_parse returned 0, verified) descriptor. */
struct idesc {
    uint8_t flags;  /* no bit defined: always 0 */
    uint8_t suites; /* enum ovl_aead_suite mask accepted end to end */
    uint8_t n_intro;
    uint64_t seq; /* the node's counter: larger is newer */
    uint64_t published_ms, expires_ms;
    uint8_t id_pk[OVL_ED25519_PK];
    uint8_t onion_pk[OVL_X25519_LEN];
    struct idesc_intro intro[IDESC_MAX_INTRO]; /* the first n_intro used, the rest zero */
};

/* Why idesc_accept refuses a verified descriptor (0: it does not). */
enum idesc_verdict {
    IDESC_OK = 0,
    IDESC_OTHER_KEY, /* id_pk is not the key it was looked up under */
    IDESC_EXPIRED,   /* now_ms >= expires_ms */
    IDESC_FUTURE,    /* published more than IDESC_SKEW_MS ahead of now_ms */
    IDESC_STALE,     /* seq below the one already held */
    IDESC_REPLAY,    /* seq equal to the one already held */
    IDESC_VERDICTS   /* how many there are, for arrays of counters */
};

/* Encode d and sign it with id (whose pk must equal d->id_pk) into out
 * (cap bytes); *len receives the size, IDESC_LEN(d->n_intro). OVL_EINVAL
 * for a descriptor idesc_parse would refuse or another key, OVL_ETOOBIG
 * if cap is too small (*len is 0 on any failure). id is only read:
 * nothing of its secret key is copied. */
int idesc_sign(const struct idesc *d, const struct ovl_identity *id, uint8_t *out, size_t cap,
               size_t *len) OVL_WUR;

/* Decode and verify one descriptor of exactly len bytes into d. OVL_EPROTO
 * for a malformed one, OVL_ECRYPTO for a bad signature, OVL_EINVAL for a
 * NULL d; d is zeroed on any failure, so nothing of a refused descriptor
 * is used. Whether to use it is idesc_accept's business. */
int idesc_parse(struct idesc *d, const uint8_t *in, size_t len) OVL_WUR;

/* Judge a verified descriptor looked up under want_id at wall-clock time
 * now_ms, against the newest one already held for that key (have_seq,
 * when have_any). Checks, first failure wins: the key, expiry, the
 * publication time, the counter. A NULL d or want_id is IDESC_OTHER_KEY. */
enum idesc_verdict idesc_accept(const struct idesc *d, const uint8_t want_id[OVL_ED25519_PK],
                                uint64_t now_ms, uint64_t have_seq, bool have_any);

/* Return a short fixed name for v ("ok", "other_key", ...; "unknown" for
 * anything else), for counters and logs. */
const char *idesc_verdict_name(enum idesc_verdict v);

#endif
