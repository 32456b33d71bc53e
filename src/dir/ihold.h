/* ihold.h - the bootstrap's hold of hidden nodes' inbound descriptors.
 *
 * A hidden node registers no descriptor; an exit of one of its chains
 * passes its signed inbound descriptor (idesc.h) on to the bootstraps
 * (DIR_IDESC), and a lookup of the node answers it (docs/PROTOCOL.md
 * 22.3). This is the store behind that: for each hidden node (id_pk) the
 * newest inbound descriptor that idesc_accept took, with its signed bytes
 * as received, until its expires_ms passes on the wall clock.
 *
 * Pure data structure: no I/O, no clock of its own (the caller passes the
 * wall clock), no signature checked here (the caller hands in what
 * idesc_parse verified). Memory is bounded: at most max entries in all,
 * and at most max / 2 (at least 1) made by any one peer (the one that
 * passed on the first descriptor an entry held), so a single relay
 * passing descriptors on cannot fill the hold alone. An entry costs one
 * allocation of fixed size when it is made; a newer descriptor for the
 * same node replaces it in place, whoever passes it on.
 */
#ifndef OVL_DIR_IHOLD_H
#define OVL_DIR_IHOLD_H

#include <stddef.h>
#include <stdint.h>

#include "dir/idesc.h"
#include "lib/err.h"

/* One held inbound descriptor. */
struct ihold_ent {
    uint8_t id_pk[OVL_ED25519_PK]; /* the hidden node: the key */
    uint8_t by_pk[OVL_ED25519_PK]; /* the peer it counts against (made it) */
    uint64_t seq, expires_ms;      /* of the descriptor held; expires_ms wall clock */
    uint8_t raw[IDESC_MAX_LEN];    /* its signed bytes as received */
    size_t raw_len;
};

struct ihold;

/* Create an empty hold of at most max entries; *out is NULL on failure.
 * OVL_EINVAL when max is 0. */
int ihold_new(uint32_t max, struct ihold **out) OVL_WUR;

/* Free h and everything in it (NULL-safe). */
void ihold_free(struct ihold *h);

/* Keep in, verified by idesc_parse from raw (len bytes, copied), passed on
 * by peer by, at wall-clock time wall_ms, if idesc_accept takes it against
 * the one held for in->id_pk (if any). Returns 0 when kept (replacing the
 * older one), OVL_EPERM when idesc_accept refused it (*v says why; it is
 * IDESC_OK otherwise), OVL_ENOMEM for a new node at the cap (after
 * dropping the expired ones) or past by's share of it, or out of memory,
 * OVL_EINVAL for NULL arguments or a len outside the descriptor sizes.
 * Nothing but the dropping of expired entries changes unless it returns
 * 0. */
int ihold_put(struct ihold *h, const struct idesc *in, const uint8_t *raw, size_t len,
              const uint8_t by[OVL_ED25519_PK], uint64_t wall_ms, enum idesc_verdict *v) OVL_WUR;

/* Return the inbound descriptor held for pk, unexpired at wall_ms, or
 * NULL. Valid until the next call that changes h. */
const struct ihold_ent *ihold_get(const struct ihold *h, const uint8_t pk[OVL_ED25519_PK],
                                  uint64_t wall_ms);

/* Drop every entry expired at wall_ms; return how many. */
unsigned ihold_expire(struct ihold *h, uint64_t wall_ms);

/* Return how many entries are held (expired ones not yet dropped too). */
unsigned ihold_count(const struct ihold *h);

#endif
