/* desc.c - signed node descriptors and bootstrap-signed documents.
 *
 * Encoders and decoders share one set of checks (desc_check) so that nothing
 * this node signs could be refused by another node. Decoders walk every
 * length against the buffer before they read, and never allocate from a
 * count they have not checked against the bytes actually present.
 */
#include "dir/desc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"

#define DESC_URI_LEN_MAX  255 /* one length byte */
#define DOC_MAX_HOPS      8
#define DOC_MAX_BACKUPS   4
#define DOC_VERSION       1
#define DOC_OFF_PUBLISHED 20 /* header offsets of the fields written in more than one place */
#define DOC_OFF_EXPIRES   28
#define DOC_OFF_COUNT     36

/* libsodium's, which ovld imports anyway. */
static bool all_zero(const uint8_t *p, size_t n)
{
    return sodium_is_zero(p, n) != 0;
}

/* A URI of len bytes: printable ASCII without spaces, parses, dialable. */
static bool uri_ok(const char *s, size_t len)
{
    char tmp[DESC_URI_LEN_MAX + 1];
    struct ovl_uri u;

    if (len == 0 || len > DESC_URI_LEN_MAX || len >= OVL_URI_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (uri_parse(&u, tmp) != 0)
        return false;
    return u.port != 0; /* port 0 is for listening; nobody can dial it */
}

/* Checks on the decoded fields that both desc_sign and desc_parse apply. */
static bool desc_fields_ok(const struct desc *d)
{
    if (d->flags & ~(DESC_RELAY | DESC_ENDPOINT | DESC_EXIT | DESC_FAMILY | DESC_DORMANT))
        return false;
    if ((d->flags & (DESC_RELAY | DESC_ENDPOINT)) == 0)
        return false;
    if ((d->flags & (DESC_EXIT | DESC_FAMILY | DESC_DORMANT)) && !(d->flags & DESC_RELAY))
        return false;
    if (d->suites == 0 || (d->suites & ~OVL_AEAD_ALL))
        return false;
    if (d->n_uris < 1 || d->n_uris > DESC_MAX_URIS)
        return false;
    if (d->expires_ms <= d->published_ms)
        return false;
    return !all_zero(d->onion_pk, sizeof(d->onion_pk));
}

/* An exit's policy decodes and is not empty; no one else has one. */
static bool desc_policy_ok(const struct desc *d)
{
    struct exit_policy ep;

    if (!(d->flags & DESC_EXIT))
        return d->policy_len == 0;
    return d->policy_len && exit_policy_decode(&ep, d->policy, d->policy_len) == 0;
}

/* A family names 1..DESC_FAMILY_MAX identities, none twice and never d's
 * own (a relay is trivially its own family); without the flag, none. */
static bool desc_family_ok(const struct desc *d)
{
    if (!(d->flags & DESC_FAMILY))
        return d->n_family == 0;
    if (d->n_family < 1 || d->n_family > DESC_FAMILY_MAX)
        return false;
    for (unsigned i = 0; i < d->n_family; i++) {
        if (memcmp(d->family[i], d->id_pk, OVL_ED25519_PK) == 0)
            return false;
        for (unsigned j = 0; j < i; j++)
            if (memcmp(d->family[i], d->family[j], OVL_ED25519_PK) == 0)
                return false;
    }
    return true;
}

/* Encode d, sign it with id and write it into out (cap bytes). */
int desc_sign(const struct desc *d, const struct ovl_identity *id, uint8_t *out, size_t cap,
              size_t *len)
{
    size_t ulen[DESC_MAX_URIS], need = DESC_FIXED_LEN + OVL_SIG_LEN, pos;
    int rc;

    if (len)
        *len = 0;
    if (!d || !id || !out || !len || !desc_fields_ok(d) || !desc_policy_ok(d) || !desc_family_ok(d))
        return OVL_EINVAL;
    if (!ovl_equal(d->id_pk, id->pk, OVL_ED25519_PK))
        return OVL_EINVAL;
    for (unsigned i = 0; i < d->n_uris; i++) {
        ulen[i] = strnlen(d->uris[i], OVL_URI_MAX);
        if (!uri_ok(d->uris[i], ulen[i]))
            return OVL_EINVAL;
        need += 1 + ulen[i];
    }
    if (d->flags & DESC_EXIT)
        need += 1 + d->policy_len;
    if (d->flags & DESC_FAMILY)
        need += 1 + (size_t)d->n_family * OVL_ED25519_PK;
    if (need > cap)
        return OVL_ETOOBIG;

    out[0] = DESC_VERSION;
    out[1] = d->flags;
    out[2] = d->suites;
    out[3] = d->n_uris;
    st_le64(out + 4, d->published_ms);
    st_le64(out + 12, d->expires_ms);
    memcpy(out + 20, d->id_pk, OVL_ED25519_PK);
    memcpy(out + 52, d->onion_pk, OVL_X25519_LEN);
    st_le32(out + 84, d->capacity);
    pos = DESC_FIXED_LEN;
    for (unsigned i = 0; i < d->n_uris; i++) {
        out[pos++] = (uint8_t)ulen[i];
        memcpy(out + pos, d->uris[i], ulen[i]);
        pos += ulen[i];
    }
    if (d->flags & DESC_EXIT) {
        out[pos++] = d->policy_len;
        memcpy(out + pos, d->policy, d->policy_len);
        pos += d->policy_len;
    }
    if (d->flags & DESC_FAMILY) {
        out[pos++] = d->n_family;
        memcpy(out + pos, d->family, (size_t)d->n_family * OVL_ED25519_PK);
        pos += (size_t)d->n_family * OVL_ED25519_PK;
    }
    rc = ovl_sign(id, out, pos, out + pos);
    if (rc != 0)
        return rc;
    *len = pos + OVL_SIG_LEN;
    return 0;
}

/* Decode the URI list, the policy and the family of in[DESC_FIXED_LEN ..
 * body) into d. */
static int desc_parse_tail(struct desc *d, const uint8_t *in, size_t body)
{
    size_t pos = DESC_FIXED_LEN;

    for (unsigned i = 0; i < d->n_uris; i++) {
        if (pos >= body)
            return OVL_EPROTO;
        size_t ulen = in[pos++];
        if (ulen > body - pos || !uri_ok((const char *)in + pos, ulen))
            return OVL_EPROTO;
        memcpy(d->uris[i], in + pos, ulen);
        d->uris[i][ulen] = '\0';
        pos += ulen;
    }
    if ((d->flags & DESC_EXIT) && pos < body && in[pos] < body - pos) {
        d->policy_len = in[pos++];
        memcpy(d->policy, in + pos, d->policy_len);
        pos += d->policy_len;
    }
    if ((d->flags & DESC_FAMILY) && pos < body && in[pos] >= 1 && in[pos] <= DESC_FAMILY_MAX &&
        (size_t)in[pos] * OVL_ED25519_PK <= body - pos - 1) {
        d->n_family = in[pos++];
        memcpy(d->family, in + pos, (size_t)d->n_family * OVL_ED25519_PK);
        pos += (size_t)d->n_family * OVL_ED25519_PK;
    }
    /* no policy or family where one is due, or trailing bytes before the
     * signature */
    return pos == body && desc_policy_ok(d) && desc_family_ok(d) ? 0 : OVL_EPROTO;
}

/* Decode and verify one descriptor of exactly len bytes. */
int desc_parse(struct desc *d, const uint8_t *in, size_t len)
{
    size_t body;
    int rc;

    if (!d)
        return OVL_EINVAL;
    memset(d, 0, sizeof(*d));
    if (!in || len < DESC_MIN_LEN || len > DESC_MAX_LEN)
        return OVL_EPROTO;
    body = len - OVL_SIG_LEN;
    if (in[0] != DESC_VERSION)
        return OVL_EPROTO;
    d->flags = in[1];
    d->suites = in[2];
    d->n_uris = in[3];
    d->published_ms = ld_le64(in + 4);
    d->expires_ms = ld_le64(in + 12);
    memcpy(d->id_pk, in + 20, OVL_ED25519_PK);
    memcpy(d->onion_pk, in + 52, OVL_X25519_LEN);
    d->capacity = ld_le32(in + 84);
    rc = desc_fields_ok(d) ? desc_parse_tail(d, in, body) : OVL_EPROTO;
    if (rc == 0)
        rc = ovl_verify(d->id_pk, in, body, in + body) == 0 ? 0 : OVL_ECRYPTO;
    if (rc != 0)
        memset(d, 0, sizeof(*d));
    return rc;
}

/* A global IPv4 address: none of 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
 * 172.16/12, 192.168/16, 224/4 (multicast) and 240/4 (reserved, with the
 * broadcast address). */
static bool v4_public(const uint8_t *a)
{
    return a[0] != 0 && a[0] != 10 && a[0] != 127 && a[0] < 224 &&
           !(a[0] == 100 && (a[1] & 0xc0) == 64) && !(a[0] == 169 && a[1] == 254) &&
           !(a[0] == 172 && (a[1] & 0xf0) == 16) && !(a[0] == 192 && a[1] == 168);
}

/* Return true when a (len 4 or 16) is a global address (desc.h). */
bool desc_addr_public(const uint8_t *a, size_t len)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};

    if (len == 4)
        return v4_public(a);
    if (len != 16)
        return false;
    if (memcmp(a, mapped, sizeof(mapped)) == 0) /* ::ffff:a.b.c.d dials a.b.c.d */
        return v4_public(a + 12);
    /* ::/96 (unspecified, loopback, IPv4-compatible), fc00::/7 (unique
     * local), fe80::/9 (link- and site-local), ff00::/8 (multicast) */
    return !all_zero(a, 12) && (a[0] & 0xfe) != 0xfc && a[0] != 0xff &&
           !(a[0] == 0xfe && (a[1] & 0x80));
}

/* Return true when uri names a global IP literal (desc.h). */
bool desc_uri_public(const char *uri)
{
    struct sockaddr_storage ss;
    struct ovl_uri u;

    /* A DNS name would make the dialer resolve what its publisher chose. */
    if (uri_parse(&u, uri) != 0 || !u.is_literal || uri_sockaddr(&u, &ss) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        return desc_addr_public((const uint8_t *)&((const struct sockaddr_in *)&ss)->sin_addr, 4);
    return desc_addr_public(((const struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr, 16);
}

/* Return true when every address of d is public, or private ones are allowed. */
bool desc_addresses_ok(const struct desc *d, bool allow_private)
{
    for (unsigned i = 0; i < d->n_uris && !allow_private; i++)
        if (!desc_uri_public(d->uris[i]))
            return false;
    return true;
}

/* Return true when d's family field names pk. */
bool desc_names_family(const struct desc *d, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < d->n_family && i < DESC_FAMILY_MAX; i++)
        if (memcmp(d->family[i], pk, OVL_ED25519_PK) == 0)
            return true;
    return false;
}

/* Return true when d has expired at wall-clock time now_ms. */
bool desc_expired(const struct desc *d, uint64_t now_ms)
{
    return !d || now_ms >= d->expires_ms;
}

/* Header fields that doc_begin and doc_parse both require. */
static bool doc_shape_ok(uint8_t kind, uint8_t length, uint8_t backups, const uint8_t *ref,
                         uint64_t published_ms, uint64_t expires_ms)
{
    if (expires_ms <= published_ms)
        return false;
    if (kind == DOC_LIST || kind == DOC_SYNC)
        return length == 0 && backups == 0 && (!ref || all_zero(ref, 16));
    if (kind == DOC_CHAIN || kind == DOC_CHAIN_SET)
        return length >= 1 && length <= DOC_MAX_HOPS && backups <= DOC_MAX_BACKUPS;
    return false;
}

/* Whether count entries fit kind's shape: one chain, or 1..DOC_MAX_SET of
 * them; anything for a list. */
static bool doc_count_ok(uint8_t kind, uint8_t length, uint8_t backups, unsigned count)
{
    unsigned per = length * (1u + backups);

    if (kind == DOC_CHAIN)
        return count == per;
    if (kind == DOC_CHAIN_SET)
        return per && count % per == 0 && count / per >= 1 && count / per <= DOC_MAX_SET;
    return true;
}

/* Start a document of kind into a buffer of cap bytes. */
int doc_begin(struct doc_builder *b, uint8_t kind, uint8_t length, uint8_t backups,
              const uint8_t ref[16], uint64_t published_ms, uint64_t expires_ms, size_t cap)
{
    if (!b)
        return OVL_EINVAL;
    memset(b, 0, sizeof(*b));
    if (!doc_shape_ok(kind, length, backups, ref, published_ms, expires_ms))
        return OVL_EINVAL;
    if (cap < DOC_HDR_LEN + OVL_SIG_LEN || cap > DOC_MAX_LEN)
        return OVL_EINVAL;
    b->buf = malloc(cap);
    if (!b->buf)
        return OVL_ENOMEM;
    b->cap = cap;
    b->buf[0] = DOC_VERSION;
    b->buf[1] = kind;
    b->buf[2] = length;
    b->buf[3] = backups;
    if (ref)
        memcpy(b->buf + 4, ref, 16);
    else
        memset(b->buf + 4, 0, 16);
    st_le64(b->buf + DOC_OFF_PUBLISHED, published_ms);
    st_le64(b->buf + DOC_OFF_EXPIRES, expires_ms);
    st_le16(b->buf + DOC_OFF_COUNT, 0); /* written by doc_finish */
    b->len = DOC_HDR_LEN;
    return 0;
}

/* Append one signed descriptor. */
int doc_add(struct doc_builder *b, const uint8_t *desc, size_t len)
{
    if (!b || !b->buf || !desc || len < DESC_MIN_LEN || len > DESC_MAX_LEN)
        return OVL_EINVAL;
    if (b->count == UINT16_MAX || 2 + len + OVL_SIG_LEN > b->cap - b->len)
        return OVL_ETOOBIG;
    st_le16(b->buf + b->len, (uint16_t)len);
    memcpy(b->buf + b->len + 2, desc, len);
    b->len += 2 + len;
    b->count++;
    return 0;
}

/* Sign the document with the bootstrap identity and hand the buffer over. */
int doc_finish(struct doc_builder *b, const struct ovl_identity *id, uint8_t **out, size_t *len)
{
    int rc;

    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!b || !b->buf || !id || !out || !len)
        return OVL_EINVAL;
    if (!doc_count_ok(b->buf[1], b->buf[2], b->buf[3], b->count))
        return OVL_EINVAL;
    st_le16(b->buf + DOC_OFF_COUNT, b->count);
    rc = ovl_sign(id, b->buf, b->len, b->buf + b->len);
    if (rc != 0)
        return rc;
    *out = b->buf;
    *len = b->len + OVL_SIG_LEN;
    memset(b, 0, sizeof(*b));
    return 0;
}

/* Free a builder's buffer. */
void doc_builder_free(struct doc_builder *b)
{
    if (!b)
        return;
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

/* Walk count entries of in[DOC_HDR_LEN .. body); entries may be NULL (a
 * dry run that only checks the lengths). */
static int doc_walk(const uint8_t *in, size_t body, uint16_t count, struct doc_entry *entries)
{
    size_t pos = DOC_HDR_LEN;

    for (unsigned i = 0; i < count; i++) {
        if (body - pos < 2)
            return OVL_EPROTO;
        size_t elen = ld_le16(in + pos);
        pos += 2;
        if (elen < DESC_MIN_LEN || elen > DESC_MAX_LEN || elen > body - pos)
            return OVL_EPROTO;
        if (entries) {
            entries[i].desc = in + pos;
            entries[i].len = (uint16_t)elen;
        }
        pos += elen;
    }
    return pos == body ? 0 : OVL_EPROTO;
}

/* Decode and verify every entry into doc->descs; a chain holds distinct
 * relays only (in a set: each chain of it, from its first entry). */
static int doc_check_entries(struct doc *doc)
{
    unsigned per = doc->length * (1u + doc->backups);
    int rc;

    for (unsigned i = 0; i < doc->count; i++) {
        struct desc *d = &doc->descs[i];

        rc = desc_parse(d, doc->entries[i].desc, doc->entries[i].len);
        if (rc != 0)
            return rc;
        if (doc->kind != DOC_CHAIN && doc->kind != DOC_CHAIN_SET)
            continue;
        if (!(d->flags & DESC_RELAY))
            return OVL_EPROTO;
        for (unsigned j = i - i % per; j < i; j++) {
            if (memcmp(doc->descs[j].id_pk, d->id_pk, OVL_ED25519_PK) == 0)
                return OVL_EPROTO;
        }
    }
    return 0;
}

/* Decode and verify a document signed by bs_pk. */
int doc_parse(struct doc *doc, const uint8_t *in, size_t len, const uint8_t bs_pk[OVL_ED25519_PK])
{
    size_t body;
    int rc;

    if (!doc)
        return OVL_EINVAL;
    memset(doc, 0, sizeof(*doc));
    if (!in || !bs_pk)
        return OVL_EINVAL;
    if (len < DOC_HDR_LEN + OVL_SIG_LEN || len > DOC_MAX_LEN)
        return OVL_EPROTO;
    body = len - OVL_SIG_LEN;
    if (ovl_verify(bs_pk, in, body, in + body) != 0)
        return OVL_ECRYPTO;
    doc->kind = in[1];
    doc->length = in[2];
    doc->backups = in[3];
    memcpy(doc->ref, in + 4, 16);
    doc->published_ms = ld_le64(in + DOC_OFF_PUBLISHED);
    doc->expires_ms = ld_le64(in + DOC_OFF_EXPIRES);
    doc->count = ld_le16(in + DOC_OFF_COUNT);
    rc = OVL_EPROTO;
    if (in[0] != DOC_VERSION || !doc_shape_ok(doc->kind, doc->length, doc->backups, doc->ref,
                                              doc->published_ms, doc->expires_ms))
        goto fail;
    if (!doc_count_ok(doc->kind, doc->length, doc->backups, doc->count))
        goto fail;
    /* A dry walk first: count is now known to be backed by bytes. */
    rc = doc_walk(in, body, doc->count, NULL);
    if (rc != 0 || doc->count == 0)
        goto done;
    rc = OVL_ENOMEM;
    doc->entries = calloc(doc->count, sizeof(*doc->entries));
    if (doc->kind != DOC_SYNC) /* a sync's reader verifies only what is new to it */
        doc->descs = calloc(doc->count, sizeof(*doc->descs));
    if (!doc->entries || (!doc->descs && doc->kind != DOC_SYNC))
        goto fail;
    rc = doc_walk(in, body, doc->count, doc->entries);
    if (rc == 0 && doc->kind != DOC_SYNC)
        rc = doc_check_entries(doc);
done:
    if (rc == 0)
        return 0;
fail:
    doc_free(doc);
    memset(doc, 0, sizeof(*doc));
    return rc;
}

/* Return how many chains doc holds. */
unsigned doc_chains(const struct doc *doc)
{
    unsigned per = doc ? doc->length * (1u + doc->backups) : 0;

    if (!doc || !per || (doc->kind != DOC_CHAIN && doc->kind != DOC_CHAIN_SET))
        return 0;
    return doc->count / per;
}

/* Free what doc_parse allocated. */
void doc_free(struct doc *doc)
{
    if (!doc)
        return;
    free(doc->entries);
    doc->entries = NULL;
    free(doc->descs);
    doc->descs = NULL;
    doc->count = 0;
}
