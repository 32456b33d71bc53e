/* onion.h - the chain crypto: one-pass setup headers and per-hop data layers.
 *
 * Protocol "ovl-chain-v1" (docs/PROTOCOL.md, "Chains"). Pure functions, no
 * I/O, no allocation. A chain has 1..ONION_MAX_HOPS hops; every structure
 * has the size it would have for ONION_MAX_HOPS, so no hop learns its
 * position or the chain's length.
 *
 * Setup (Sphinx-shaped, one ephemeral key per hop): the header is
 * ONION_MAX_HOPS slots of ONION_SLOT_LEN bytes. Hop i reads the slot in
 * front: eph_pk(32) | ChaCha20-Poly1305(k_info, info(40)) | tag(16), with the
 * rest of the header (ONION_HDR_LEN - ONION_SLOT_LEN bytes) as associated
 * data, so any change anywhere in the header is caught by the next hop. It
 * then shifts the header left by one slot, XORs it with a ChaCha20 stream of
 * its own and appends the stream's next ONION_SLOT_LEN bytes (the
 * filler, which the sender precomputes). Keys come from
 * s = X25519(eph_sk, onion_pk): prk = BLAKE2b-256(key = BLAKE2b-256(
 * "ovl-chain-v1"), s || eph_pk || onion_pk), then one key per purpose as
 * B(key = prk, label) (docs/PROTOCOL.md, "Chains: crypto").
 *
 * Data cells (payload OVL_CELL_PAYLOAD = 1016 bytes) have the layout
 *     tag(16) | ct(ONION_BODY = 888) | junk(ONION_JUNK = 112)
 * Forward, hop i opens ct with its forward AEAD (AES-256-GCM or
 * ChaCha20-Poly1305, the suite of the setup), nonce = its forward counter,
 * associated data = junk; any change to any byte is detected by the next
 * honest hop (no malleable counter-mode layer, see Tor's CGO proposal). The
 * cell for the next hop is  tag' | plaintext(888) | junk'  with
 *     tag' || junk' = (junk || 16 zero bytes) ^ KS
 * where KS is 128 bytes of ChaCha20 under the hop's forward stream key with
 * the counter as nonce (masking the tag too, so that no 16-byte block
 * crosses a hop unchanged). At the exit the plaintext is the 888-byte body.
 *
 * Backward, the hop that originates a cell seals a body with its "orig"
 * key; its junk is 112 bytes of ChaCha20 under its backward stream key
 * (looks random, but the sender can recompute it). Every hop it passes adds
 * a layer with its "back" key, without associated data:
 *     tag' | AEAD(ct) | (tag || junk[0:96]) ^ KSb(112)
 * The sender removes the layers in order, knows which hop originated the
 * cell from the key that opens, and then checks the junk it could recover
 * against the originator's stream: every received byte is covered either
 * by a tag that opened or by that check. Each hop has one backward counter
 * for both kinds.
 *
 * Counters are implicit (never on the wire): each side counts the cells of
 * each layer and direction. A receiver tries counters next .. next +
 * ONION_WINDOW - 1 so that a dropped cell does not stall the chain; older
 * counters never open, so replays are rejected.
 */
#ifndef OVL_CHAIN_ONION_H
#define OVL_CHAIN_ONION_H

#include <stdint.h>

#include "core/cell.h"
#include "lib/crypto.h"
#include "lib/err.h"

#define ONION_MAX_HOPS 8
#define ONION_INFO_LEN 40
#define ONION_SLOT_LEN (OVL_X25519_LEN + ONION_INFO_LEN + OVL_AEAD_TAG) /* 88 */
#define ONION_HDR_LEN  (ONION_MAX_HOPS * ONION_SLOT_LEN)                /* 704 */
#define ONION_TAG      OVL_AEAD_TAG
#define ONION_JUNK     ((ONION_MAX_HOPS - 1) * ONION_TAG)          /* 112 */
#define ONION_BODY     (OVL_CELL_PAYLOAD - ONION_TAG - ONION_JUNK) /* 888 */
#define ONION_BODY_OFF ONION_TAG /* where the exit finds the body after peeling */
#define ONION_WINDOW   8

enum onion_hop_type {
    ONION_HOP_RELAY = 1, /* forward to info.next */
    ONION_HOP_EXIT = 2,  /* last hop: act on the body */
};

/* What the setup tells one hop; 40 bytes on the wire:
 * type(1) | suite(1) | flags(2, LE, zero) | lifetime_s(4, LE) | next(32). */
struct onion_hop_info {
    uint8_t type;                 /* enum onion_hop_type */
    uint8_t suite;                /* enum ovl_aead_suite for this hop's data layers */
    uint16_t flags;               /* zero in version 1 */
    uint32_t lifetime_s;          /* how long the hop keeps the chain */
    uint8_t next[OVL_ED25519_PK]; /* next hop identity; zero for EXIT */
};

/* The data-phase keys of one hop, held by that hop and by the sender.
 * Its AEAD contexts may hold memory (crypto.h): keys are moved, never
 * copied, and every filled struct ends in onion_keys_wipe. Secret.
 *
 * At a hop (onion_setup_peel) the three layer keys are kept and each
 * context is made on its first use, so an idle chain holds none of the
 * memory a context may hold (768 bytes each for AES-256-GCM with GnuTLS),
 * and onion_keys_idle gives them back again: a relay's idle chains are
 * small. The sender's contexts (onion_setup_build) are made at once and
 * its layer keys are not kept. */
struct onion_keys {
    enum ovl_aead_suite suite;
    struct ovl_aead fwd;  /* forward layer (suite 0 while not made) */
    struct ovl_aead back; /* backward layer added to relayed cells */
    struct ovl_aead orig; /* backward layer of cells this hop originates */
    uint8_t fwd_ks[32];   /* ChaCha20 key of the forward junk stream */
    uint8_t back_ks[32];  /* ChaCha20 key of the backward junk stream */
    uint8_t junk_ks[32];  /* sender only (random; zero at a relay): ChaCha20 key of the
                           * junk a forward cell ending at this hop carries */
    uint8_t layer[3][32]; /* hop only: the keys of fwd, back and orig; all zero at
                           * the sender, whose contexts are never given back */
};

/* Sender: build a setup header for n hops (1..ONION_MAX_HOPS). onion_pk[i]
 * is hop i's X25519 onion key, info[i] what hop i is told (the last must be
 * ONION_HOP_EXIT, the others ONION_HOP_RELAY, suites available here).
 * keys[i] (holding nothing) receives hop i's data keys. OVL_EINVAL for bad
 * arguments, OVL_ECRYPTO for a low-order onion key; on failure keys are
 * wiped. */
int onion_setup_build(uint8_t hdr[ONION_HDR_LEN], const uint8_t (*onion_pk)[OVL_X25519_LEN],
                      const struct onion_hop_info *info, unsigned n,
                      struct onion_keys *keys) OVL_WUR;

/* Hop: open the front slot of hdr with its onion key pair. On success info
 * and keys (holding nothing before) are filled and hdr is rewritten in
 * place into the header for the next hop. OVL_ECRYPTO when the slot does
 * not open under this key (tampered, or made for another key: try the
 * previous onion key) and OVL_EPROTO for a malformed info (bad type, suite
 * or flags); hdr is left unchanged on failure. */
int onion_setup_peel(uint8_t hdr[ONION_HDR_LEN], const uint8_t onion_pk[OVL_X25519_LEN],
                     const uint8_t onion_sk[OVL_X25519_LEN], struct onion_hop_info *info,
                     struct onion_keys *keys) OVL_WUR;

/* Sender: wrap body (ONION_BODY bytes) for hops keys[0..n-1] into out, hop
 * i's layer under its forward counter ctr[i]. The counters are per hop
 * because a repaired chain keeps the hops before the failed position (and
 * their counters) while the hops set up again start from zero. OVL_EINVAL
 * for bad arguments or a counter of UINT64_MAX. */
int onion_fwd_wrap(uint8_t out[OVL_CELL_PAYLOAD], const struct onion_keys *keys, unsigned n,
                   const uint64_t *ctr, const uint8_t body[ONION_BODY]) OVL_WUR;

/* Hop: remove one forward layer in place, trying counters *next ..
 * *next + ONION_WINDOW - 1; on success *next moves past the one that opened.
 * OVL_ECRYPTO (cell unchanged) when none does: tampered, replayed or
 * foreign. An exit then reads the body at cell + ONION_BODY_OFF. */
int onion_fwd_peel(uint8_t cell[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *next) OVL_WUR;

/* Hop: make a new backward cell carrying body, sealed with k->orig under
 * counter *ctr (then incremented). body may lie at out + ONION_BODY_OFF,
 * where it is sealed without a copy (and wiped with out on failure). */
int onion_back_originate(uint8_t out[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *ctr,
                         const uint8_t body[ONION_BODY]) OVL_WUR;

/* Hop: add its backward layer to a cell received from the next hop, in
 * place, under counter *ctr (then incremented). */
int onion_back_add(uint8_t cell[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *ctr) OVL_WUR;

/* Sender: remove every layer of a backward cell. next[i] is the next
 * expected backward counter of hop i (advanced for each hop the cell
 * crossed). On success *origin is the index of the hop that originated it
 * and body receives its ONION_BODY bytes. OVL_ECRYPTO when the cell does not
 * verify (counters then unchanged). */
int onion_back_unwrap(uint8_t body[ONION_BODY], unsigned *origin, const struct onion_keys *keys,
                      unsigned n, uint64_t *next, const uint8_t cell[OVL_CELL_PAYLOAD]) OVL_WUR;

/* Hop: give back what k's AEAD contexts hold; the next cell makes them
 * again from the kept keys (one key schedule, no public-key work). A
 * sender's keys, whose layer keys are not kept, are left as they are. */
void onion_keys_idle(struct onion_keys *k);

/* Return the bytes k's contexts hold now besides struct onion_keys. */
size_t onion_keys_heap(const struct onion_keys *k);

/* Wipe k and release what it holds; a zeroed or NULL k is fine. */
void onion_keys_wipe(struct onion_keys *k);

#endif
