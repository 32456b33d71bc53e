/* fuzz_doc.c - the bootstrap's signed documents (src/dir/desc.h: doc_parse).
 *
 * doc_parse checks the bootstrap's signature before anything else, so the
 * harness signs the fuzzed body with the fixed bootstrap key, as the
 * bootstrap would, to reach the parser; it may also sign every entry with
 * a fixed relay identity so that the descriptors inside parse too.
 *
 * Input: mode(1), then the document.
 *   mode bit 0 set: the rest is the body without its signature; the
 *     harness appends the bootstrap's signature (else the input's own
 *     last 64 bytes are the signature);
 *   mode bit 1 set: before that, every entry the header's count names (as
 *     far as the lengths hold) gets relay identity i's key in its id_pk
 *     and that identity's signature over the entry.
 *
 * Properties: with both bits no input fails on a signature; a document
 * that parses has count entries that each parse as a descriptor, a chain
 * set 1..DOC_MAX_SET whole chains of its shape (a DOC_SYNC's entries are
 * left to its reader: a registry takes each as a copy or refuses it, the
 * same again is taken as the same, and none of them is ever saved as
 * registered there), and one
 * the harness signed is rebuilt byte for byte by doc_begin, doc_add and
 * doc_finish from what doc_parse returned.
 */
#include <string.h>

#include "dir/desc.h"
#include "dir/registry.h"
#include "fuzz.h"

#define N_RELAYS 40 /* the most one chain holds: 8 hops x (1 + 4); a set repeats them */
#define ID_OFF   20 /* id_pk's offset in a descriptor */

static struct ovl_identity bs, relays[N_RELAYS];

/* Sign the descriptors of in[DOC_HDR_LEN .. body) with relays[i] in place,
 * following the lengths as doc_parse does and stopping where they fail. */
static void sign_entries(uint8_t *in, size_t body)
{
    size_t pos = DOC_HDR_LEN;
    unsigned count = (unsigned)in[36] | (unsigned)in[37] << 8;

    for (unsigned i = 0; i < count; i++) {
        if (body - pos < 2)
            return;
        size_t elen = (size_t)in[pos] | (size_t)in[pos + 1] << 8;
        pos += 2;
        if (elen > body - pos)
            return;
        if (elen >= ID_OFF + OVL_ED25519_PK + OVL_SIG_LEN) {
            uint8_t *e = in + pos;
            const struct ovl_identity *r = &relays[i % N_RELAYS];

            memcpy(e + ID_OFF, r->pk, OVL_ED25519_PK);
            FUZZ_ASSERT(ovl_sign(r, e, elen - OVL_SIG_LEN, e + elen - OVL_SIG_LEN) == 0);
        }
        pos += elen;
    }
}

/* A signed relay descriptor of relays[i]. */
static size_t make_desc(uint8_t *out, unsigned i)
{
    struct desc d;
    size_t len;

    memset(&d, 0, sizeof(d));
    d.flags = DESC_RELAY;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = 1;
    d.published_ms = 1700000000000ull;
    d.expires_ms = d.published_ms + 3600000;
    memcpy(d.id_pk, relays[i].pk, OVL_ED25519_PK);
    memset(d.onion_pk, 0x40 + (int)i, sizeof(d.onion_pk));
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://10.0.0.%u:7001", i + 1);
    if (desc_sign(&d, &relays[i], out, DESC_MAX_LEN, &len) != 0)
        abort();
    return len;
}

/* Write the seed mode | document of n entries, entry i relay i % wrap's
 * (the signature dropped when mode says the harness signs). */
static void doc_seed_wrap(const char *dir, const char *name, uint8_t mode, uint8_t kind,
                          uint8_t length, uint8_t backups, unsigned n, unsigned wrap)
{
    static struct fuzz_seed s;
    static const uint8_t ref[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct doc_builder b;
    uint8_t d[DESC_MAX_LEN], *out;
    size_t len;

    if (doc_begin(&b, kind, length, backups,
                  kind == DOC_CHAIN || kind == DOC_CHAIN_SET ? ref : NULL, 1700000000000ull,
                  1700000600000ull, 16384) != 0)
        abort();
    for (unsigned i = 0; i < n; i++) {
        size_t dl = make_desc(d, i % wrap);
        if (doc_add(&b, d, dl) != 0)
            abort();
    }
    if (doc_finish(&b, &bs, &out, &len) != 0)
        abort();
    s.len = 0;
    seed_u8(&s, mode);
    seed_put(&s, out, (mode & 1) ? len - OVL_SIG_LEN : len);
    fuzz_write_seed(dir, name, s.buf, s.len);
    free(out);
}

static void doc_seed(const char *dir, const char *name, uint8_t mode, uint8_t kind, uint8_t length,
                     uint8_t backups, unsigned n)
{
    doc_seed_wrap(dir, name, mode, kind, length, backups, n, N_RELAYS);
}

static void seeds(const char *dir)
{
    doc_seed(dir, "raw-list-3", 0, DOC_LIST, 0, 0, 3);
    doc_seed(dir, "signed-list-2", 3, DOC_LIST, 0, 0, 2);
    doc_seed(dir, "signed-list-empty", 1, DOC_LIST, 0, 0, 0);
    doc_seed(dir, "signed-chain-2x2", 3, DOC_CHAIN, 2, 1, 4);
    doc_seed(dir, "signed-chain-3x1", 3, DOC_CHAIN, 3, 0, 3);
    /* sets: relays repeat across chains, never within one */
    doc_seed_wrap(dir, "signed-set-3x2x1", 3, DOC_CHAIN_SET, 2, 1, 12, 4);
    doc_seed_wrap(dir, "signed-set-8x1", 3, DOC_CHAIN_SET, 1, 0, 8, 3);
    doc_seed_wrap(dir, "raw-set-2x3", 0, DOC_CHAIN_SET, 3, 0, 6, 3);
    doc_seed(dir, "signed-sync-3", 3, DOC_SYNC, 0, 0, 3);
    doc_seed(dir, "raw-sync-2", 0, DOC_SYNC, 0, 0, 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_identity(&bs, 20);
    for (unsigned i = 0; i < N_RELAYS; i++)
        fuzz_identity(&relays[i], 100 + i);
    fuzz_seeds(seeds);
    return 0;
}

/* Merge a DOC_SYNC's entries into a small registry as a bootstrap of a
 * set does: each is a copy or refused; the same again changes nothing
 * but its liveness; copies are never saved as registered here. */
static void check_sync_merge(const struct doc *doc)
{
    static const uint8_t origin[OVL_ED25519_PK] = {7};
    struct registry_opts o = {
        .max_nodes = 8, .max_chains = 1, .ttl_ms = 1000, .chain_ttl_ms = 1, .allow_private = true};
    struct registry_stats st;
    struct registry *r = NULL;
    uint8_t *saved;
    size_t saved_len;

    FUZZ_ASSERT(registry_new(&o, &r) == 0);
    for (unsigned i = 0; i < doc->count; i++) {
        const struct doc_entry *e = &doc->entries[i];
        int rc = registry_replicate(r, origin, e->desc, e->len, 1, 1700000000000ull);
        int again = registry_replicate(r, origin, e->desc, e->len, 2, 1700000000000ull);

        FUZZ_ASSERT(rc == REG_SYNC_ADDED || rc == REG_SYNC_REFRESHED || rc < 0);
        if (rc >= 0)
            FUZZ_ASSERT(again == REG_SYNC_REFRESHED);
    }
    registry_stats(r, &st);
    FUZZ_ASSERT(st.relays + st.endpoints <= o.max_nodes / 2);
    FUZZ_ASSERT(st.relays == st.replicated_relays && st.endpoints == st.replicated_endpoints);
    FUZZ_ASSERT(registry_save(r, &saved, &saved_len) == 0);
    FUZZ_ASSERT(saved_len == 5 && saved[1] == 0);
    free(saved);
    registry_free(r);
}

/* Rebuild a parsed document with the builder; it must come out as buf. */
static void check_rebuild(const struct doc *doc, const uint8_t *buf, size_t len)
{
    struct doc_builder b;
    uint8_t *out;
    size_t olen;

    FUZZ_ASSERT(doc_begin(&b, doc->kind, doc->length, doc->backups, doc->ref, doc->published_ms,
                          doc->expires_ms, len) == 0);
    for (unsigned i = 0; i < doc->count; i++)
        FUZZ_ASSERT(doc_add(&b, doc->entries[i].desc, doc->entries[i].len) == 0);
    FUZZ_ASSERT(doc_finish(&b, &bs, &out, &olen) == 0);
    FUZZ_ASSERT(olen == len && memcmp(out, buf, len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode;
    bool sign, sign_all;
    size_t body, len;
    uint8_t *buf;
    struct doc doc;
    int rc;

    fuzz_begin();
    mode = fz_u8(&in);
    sign = mode & 1;
    sign_all = sign && (mode & 2);
    body = in.n;
    len = body + (sign ? OVL_SIG_LEN : 0);
    if (sign && body > DOC_MAX_LEN)
        return 0;
    buf = malloc(len ? len : 1); /* exact size: ASan sees any read past it */
    if (!buf)
        return 0;
    fz_bytes(&in, buf, body);
    if ((mode & 2) && body >= DOC_HDR_LEN)
        sign_entries(buf, body);
    if (sign)
        FUZZ_ASSERT(ovl_sign(&bs, buf, body, buf + body) == 0);
    rc = doc_parse(&doc, buf, len, bs.pk);
    if (sign_all)
        FUZZ_ASSERT(rc != OVL_ECRYPTO);
    if (rc == 0) {
        FUZZ_ASSERT(doc.count == 0 || doc.entries != NULL);
        for (unsigned i = 0; i < doc.count; i++) {
            struct desc d;

            FUZZ_ASSERT(doc.entries[i].desc >= buf && doc.entries[i].desc < buf + len);
            if (doc.kind != DOC_SYNC)
                FUZZ_ASSERT(desc_parse(&d, doc.entries[i].desc, doc.entries[i].len) == 0);
            else if (sign_all)
                FUZZ_ASSERT(desc_parse(&d, doc.entries[i].desc, doc.entries[i].len) != OVL_ECRYPTO);
        }
        if (doc.kind == DOC_CHAIN_SET)
            FUZZ_ASSERT(doc_chains(&doc) >= 1 && doc_chains(&doc) <= DOC_MAX_SET &&
                        doc.count == doc_chains(&doc) * doc.length * (1u + doc.backups));
        if (doc.kind == DOC_SYNC)
            check_sync_merge(&doc);
        if (sign)
            check_rebuild(&doc, buf, len);
    } else {
        FUZZ_ASSERT(doc.entries == NULL && doc.count == 0);
    }
    doc_free(&doc);
    free(buf);
    return 0;
}
