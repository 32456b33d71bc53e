/* dblock.h - the bootstrap's token buckets per address block.
 *
 * A requester's link identity costs nothing to mint, its address block
 * (admit_block_of: an IPv4 /24, an IPv6 /48) does: so what a bootstrap
 * hands out per unit of time is bounded per block as well as per link.
 * Each block has one bucket per kind of cost (enum dblock_bucket), a GCRA
 * token bucket (one token every 1000 / rate ms, burst at most, full when
 * first asked).
 *
 * Pure data structure, no I/O; the caller passes the monotonic time. At
 * most max blocks are held; a block whose buckets are all full again holds
 * nothing that matters and is forgotten when room is needed, so the table
 * only fills with blocks that spent tokens within the last burst / rate
 * seconds. When it is full of those, a new block gets no token (the
 * caller answers busy), as core/admit.c does for handshakes.
 */
#ifndef OVL_DIR_DBLOCK_H
#define OVL_DIR_DBLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define DBLOCK_MAX 16384 /* blocks held, at about 80 bytes each */

enum dblock_bucket {
    DBLOCK_REQUESTS, /* every directory request but heartbeats */
    DBLOCK_CHAINS,   /* chain (set) draws */
    DBLOCK_BUCKETS
};

struct dblocks;

/* Create an empty table of at most max blocks (1..DBLOCK_MAX). */
int dblocks_new(uint32_t max, struct dblocks **out) OVL_WUR;

/* Free t (NULL-safe). */
void dblocks_free(struct dblocks *t);

/* Take a token of block's bucket b (rate tokens a second, burst at most).
 * True when there was one, and also when block is 0 (unknown: no
 * accounting) or rate is 0 (no limit); false when the bucket is empty or
 * the table is full of live blocks. */
bool dblocks_take(struct dblocks *t, uint64_t block, enum dblock_bucket b, uint32_t rate,
                  uint32_t burst, uint64_t now_ms);

/* Return how many blocks are held. */
uint32_t dblocks_count(const struct dblocks *t);

#endif
