/* admit.h - what an address block may cost a node: inbound links and
 * handshakes, and which handshake first messages it has seen already.
 *
 * Inbound links are counted per address block (an IPv4 /24 or an IPv6
 * /48: what one party cheaply holds many addresses of), and a block's
 * handshakes are rate-limited by a token bucket, so that one attacker can
 * take neither every link slot nor the loop's time: each message 1 costs
 * the responder four X25519 operations. A recently seen message 1 (by its
 * ephemeral key) is refused before any of them (a replay costs the
 * attacker nothing). The per-link and global slot rules (outbound
 * reserve, evicting unauthenticated links first) are link.c's; this module
 * only counts and decides.
 *
 * Memory: one entry per block with inbound links or a bucket still
 * refilling, at most ADMIT_MAX_BLOCKS; the replay filter is a ring of
 * ADMIT_SEEN fingerprints, allocated at the first inbound handshake.
 */
#ifndef OVL_CORE_ADMIT_H
#define OVL_CORE_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define ADMIT_MAX_BLOCKS 16384
#define ADMIT_SEEN       4096

struct node;
struct admit_block;

/* An address block: family and prefix packed in 64 bits; 0 = unknown (a
 * peer whose address could not be read gets no per-block accounting). */
typedef uint64_t admit_key;

/* The node's admission state (n->admit). */
struct admit {
    struct admit_block *blocks; /* uthash by key */
    uint32_t n_blocks;
    uint64_t *seen; /* ring of message-1 fingerprints, or NULL */
    uint32_t seen_next, seen_count;
};

/* Return the block of a peer URI ("tcp://1.2.3.4:5" -> 1.2.3.0/24), or 0
 * when the host is not an IP literal. */
admit_key admit_block_of(const char *uri);

/* Take an inbound link slot for block k: false (counted) when the block
 * holds opts.max_links_per_block inbound links already or the table is full. */
bool admit_inbound(struct node *n, admit_key k);

/* Give back an inbound slot of block k taken with admit_inbound. */
void admit_inbound_gone(struct node *n, admit_key k);

/* May block k cost us a handshake now, with a message 1 whose ephemeral
 * key is eph? 0 yes (a token is spent), OVL_EAGAIN over the block's rate,
 * OVL_EEXIST for a message 1 seen before (a replay). Counted either way. */
int admit_handshake(struct node *n, admit_key k, const uint8_t eph[32]) OVL_WUR;

/* Remember a message 1 that was valid, so its replays are refused. */
void admit_handshake_seen(struct node *n, const uint8_t eph[32]);

/* Allocate n->admit (node_init). */
int admit_init(struct node *n) OVL_WUR;

/* Release n->admit and everything in it (node_free); NULL-safe. */
void admit_free(struct node *n);

#endif
