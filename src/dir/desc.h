/* desc.h - signed descriptors and the directory's signed documents.
 *
 * Wire formats (all integers little-endian; docs/PROTOCOL.md, "Directory"):
 *
 * Descriptor, signed by the node it describes:
 *   version(1)=2 | flags(1) | suites(1) | n_uris(1) | published_ms(8) |
 *   expires_ms(8) | id_pk(32) | onion_pk(32) | capacity(4) |
 *   n_uris x (len(1) | uri) | [policy_len(1) | policy] |
 *   [n_family(1) | n_family x id(32)] | sig(64) over every byte before it
 * flags: DESC_RELAY (carries chains), DESC_ENDPOINT (receives messages),
 * DESC_EXIT (an exit: only with DESC_RELAY, and then the policy field is
 * there: 1..DESC_POLICY_MAX bytes that exit_policy_decode accepts),
 * DESC_FAMILY (only with DESC_RELAY: the family field is there, naming
 * 1..DESC_FAMILY_MAX other relays' identities, none twice, never the
 * descriptor's own; two relays are one family only when each names the
 * other, select.h), DESC_DORMANT (only with DESC_RELAY: the relay's
 * accounting period's bytes are spent; it carries the chains it has and
 * takes no new ones, so bootstraps list it nowhere and draw no chain
 * through it until a descriptor without the flag comes).
 * capacity: what the node claims to forward, in KiB/s (0: no claim); any
 * value is accepted, and relay selection caps it (select.h). A node puts
 * [relay] capacity there, or its bandwidth limit when that is lower.
 *
 * Document, signed by a bootstrap (a relay list, a generated chain or a
 * set of them):
 *   version(1)=1 | kind(1) | length(1) | backups(1) | ref(16) |
 *   published_ms(8) | expires_ms(8) | count(2) |
 *   count x (len(2) | descriptor) | sig(64) over every byte before it
 * kind DOC_LIST: the live relays, length = backups = 0, ref zero.
 * kind DOC_CHAIN: count = length * (1 + backups) descriptors, position-major
 * (position 0's primary, its backups, position 1's primary, ...); ref
 * names the generated chain (the same ref means the same cached chain).
 * kind DOC_CHAIN_SET: k chains of one shape (1 <= k <= DOC_MAX_SET), count
 * = k * length * (1 + backups), chain-major, each chain position-major as
 * above; ref names the set. An identity appears at most once within one
 * chain, and may appear in several chains.
 * kind DOC_SYNC: the nodes registered directly with one bootstrap, for the
 * other bootstraps of its set (docs/PROTOCOL.md 16.9); shaped like a list.
 * doc_parse only walks its entries (descs stays NULL): the reader verifies
 * each one it does not hold already (registry_replicate).
 *
 * Times are wall-clock milliseconds since the Unix epoch. Decoders check
 * every length against the buffer, the version, the flags, that URIs are
 * printable and parse, and the signature; they never trust a count.
 * A URI is 1..255 bytes of 0x21..0x7e that uri_parse() accepts, port not 0.
 * A chain (or set) document holds DESC_RELAY descriptors only.
 */
#ifndef OVL_DIR_DESC_H
#define OVL_DIR_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dir/policy.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/uri.h"

#define DESC_VERSION    2 /* 1 had no capacity */
#define DESC_MAX_URIS   4
#define DESC_FIXED_LEN  (4 + 8 + 8 + 32 + 32 + 4)
#define DESC_POLICY_MAX 255 /* encoded exit policy, one length byte */
#define DESC_FAMILY_MAX 8   /* identities a relay's family field names */
#define DESC_MAX_LEN                                                                               \
    (DESC_FIXED_LEN + DESC_MAX_URIS * (1 + OVL_URI_MAX) + 1 + DESC_POLICY_MAX + 1 +                \
     DESC_FAMILY_MAX * OVL_ED25519_PK + OVL_SIG_LEN)
#define DESC_MIN_LEN (DESC_FIXED_LEN + 2 + OVL_SIG_LEN) /* one URI of one byte */
#define DESC_ID_OFF  20 /* id_pk's offset: version, flags, suites, n_uris, published, expires */
#define DOC_HDR_LEN  (4 + 16 + 8 + 8 + 2)
#define DOC_MAX_LEN  (256 * 1024) /* caps a relay list at roughly 1,000 relays */
#define DOC_MAX_SET  8            /* chains in a DOC_CHAIN_SET */

enum desc_flags {
    DESC_RELAY = 1u << 0,
    DESC_ENDPOINT = 1u << 1,
    DESC_EXIT = 1u << 2,
    DESC_FAMILY = 1u << 3,
    DESC_DORMANT = 1u << 4,
};

enum doc_kind {
    DOC_LIST = 1,
    DOC_CHAIN = 2,
    DOC_SYNC = 3,
    DOC_CHAIN_SET = 4,
};

/* A decoded (and, once verified, trusted) descriptor. */
struct desc {
    uint8_t flags;  /* enum desc_flags */
    uint8_t suites; /* enum ovl_aead_suite mask */
    uint8_t n_uris;
    uint8_t policy_len; /* bytes of policy: 0 unless DESC_EXIT */
    uint64_t published_ms, expires_ms;
    uint8_t id_pk[OVL_ED25519_PK];
    uint8_t onion_pk[OVL_X25519_LEN];
    uint32_t capacity; /* advertised KiB/s, 0 = none */
    char uris[DESC_MAX_URIS][OVL_URI_MAX];
    uint8_t policy[DESC_POLICY_MAX]; /* the exit policy, encoded (policy.h);
                                      * exit_policy_decode when needed */
    uint8_t n_family;                /* identities in family: 0 unless DESC_FAMILY */
    uint8_t family[DESC_FAMILY_MAX][OVL_ED25519_PK]; /* relays it declares its family */
};

/* Encode d and sign it with id (whose pk must equal d->id_pk) into out
 * (cap bytes); *len receives the size. OVL_EINVAL for a bad descriptor,
 * OVL_ETOOBIG if cap is too small. */
int desc_sign(const struct desc *d, const struct ovl_identity *id, uint8_t *out, size_t cap,
              size_t *len) OVL_WUR;

/* Decode and verify one descriptor of exactly len bytes. OVL_EPROTO for a
 * malformed one, OVL_ECRYPTO for a bad signature. Expiry is the caller's
 * business (desc_expired). */
int desc_parse(struct desc *d, const uint8_t *in, size_t len) OVL_WUR;

/* True when d's family field names pk. */
bool desc_names_family(const struct desc *d, const uint8_t pk[OVL_ED25519_PK]);

/* True when d is a relay that takes new chains: a relay, not dormant. */
static inline bool desc_takes_chains(const struct desc *d)
{
    return (d->flags & (DESC_RELAY | DESC_DORMANT)) == DESC_RELAY;
}

/* True when d has expired at wall-clock time now_ms. */
bool desc_expired(const struct desc *d, uint64_t now_ms);

/* True when uri's host is a global IP literal: false for a DNS name, and
 * for loopback, private, shared (100.64/10), link-local, unspecified,
 * multicast, broadcast and reserved addresses of either family (an IPv6
 * address that maps an IPv4 one is judged as that). What a node dials
 * from a descriptor must pass this unless [dir] allow_private_addresses
 * (docs/PROTOCOL.md 15.5). */
bool desc_uri_public(const char *uri);

/* The same test for one address a of len bytes (4: IPv4, 16: IPv6; any
 * other length is not public). An exit refuses streams to addresses that
 * fail it unless [dir] allow_private_addresses (docs/PROTOCOL.md 20.5). */
bool desc_addr_public(const uint8_t *a, size_t len);

/* True when allow_private, or every URI of d passes desc_uri_public. */
bool desc_addresses_ok(const struct desc *d, bool allow_private);

/* A decoded document: the signed descriptors stay in the caller's buffer
 * (entries), and each is also decoded once (descs), so that a reader never
 * verifies one again. */
struct doc {
    uint8_t kind, length, backups;
    uint8_t ref[16];
    uint64_t published_ms, expires_ms;
    uint16_t count;
    struct doc_entry {
        const uint8_t *desc; /* points into the buffer given to doc_parse */
        uint16_t len;
    } * entries;        /* count entries, allocated by doc_parse */
    struct desc *descs; /* count decoded, verified descriptors, allocated by
                         * doc_parse; the caller may take the array (then set
                         * descs to NULL before doc_free) */
};

/* Builder state for a document (appends descriptors already signed). */
struct doc_builder {
    uint8_t *buf;
    size_t len, cap;
    uint16_t count;
};

/* Start a document of kind into a buffer of cap bytes the builder allocates
 * (at most DOC_MAX_LEN). */
int doc_begin(struct doc_builder *b, uint8_t kind, uint8_t length, uint8_t backups,
              const uint8_t ref[16], uint64_t published_ms, uint64_t expires_ms,
              size_t cap) OVL_WUR;

/* Append one signed descriptor. OVL_ETOOBIG when it does not fit. */
int doc_add(struct doc_builder *b, const uint8_t *desc, size_t len) OVL_WUR;

/* Sign with the bootstrap identity; on success *out (malloc'd, the
 * caller's) and *len hold the document and the builder is empty.
 * OVL_EINVAL for a chain whose count is not length * (1 + backups), or a
 * set whose count is not 1..DOC_MAX_SET times that. */
int doc_finish(struct doc_builder *b, const struct ovl_identity *id, uint8_t **out,
               size_t *len) OVL_WUR;

/* Free a builder's buffer (NULL-safe, idempotent). */
void doc_builder_free(struct doc_builder *b);

/* Decode and verify a document against the bootstrap key bs_pk; each
 * entry's descriptor is checked with desc_parse too. On success
 * doc->entries and doc->descs are allocated (both NULL when count is 0;
 * free with doc_free). OVL_EPROTO / OVL_ECRYPTO as desc_parse. For
 * DOC_CHAIN, count must equal length * (1 + backups); for DOC_CHAIN_SET,
 * a multiple k of it, 1 <= k <= DOC_MAX_SET.
 * For DOC_SYNC the entries are only walked, not decoded: descs is NULL. */
int doc_parse(struct doc *doc, const uint8_t *in, size_t len,
              const uint8_t bs_pk[OVL_ED25519_PK]) OVL_WUR;

/* Return how many chains doc holds: 1 for DOC_CHAIN, k for
 * DOC_CHAIN_SET (chain i's entries start at i * length * (1 + backups)),
 * 0 for any other kind. */
unsigned doc_chains(const struct doc *doc);

/* Free what doc_parse allocated and the caller did not take (NULL-safe). */
void doc_free(struct doc *doc);

#endif
