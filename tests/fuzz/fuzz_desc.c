/* fuzz_desc.c - signed node descriptors (src/dir/desc.h: desc_parse).
 *
 * desc_parse checks every field before the signature, so raw bytes reach
 * the whole parser; only a descriptor that parses also needs a valid
 * signature, which no mutation finds. So the harness can sign for it:
 *
 * Input: mode(1), then
 *   mode bit 0 clear (raw): the rest is a descriptor as received;
 *   mode bit 0 set (signed): the rest is a descriptor body without its
 *     signature; the harness writes the fixed identity's key into id_pk
 *     (bytes 20..51, when the body is that long) and appends its
 *     signature, as an honest node would, then parses.
 *
 * Properties: a signed input never fails on the signature; a descriptor
 * that parses signs (desc_sign) back to exactly its bytes, is expired at
 * its expiry time but not when published, has a policy that decodes
 * when it is an exit (DESC_EXIT, a relay) and none otherwise, and a family
 * of 1..DESC_FAMILY_MAX distinct identities other than its own when it
 * declares one (DESC_FAMILY, a relay) and none otherwise.
 */
#include <string.h>

#include "dir/desc.h"
#include "fuzz.h"

#define ID_OFF 20 /* id_pk's offset in a descriptor body */

static struct ovl_identity id;

/* A descriptor of the fixed identity; a family of n_family made-up keys
 * when n_family is not 0. */
static size_t make_desc(uint8_t *out, uint8_t flags, const char *const *uris, unsigned n,
                        uint32_t capacity, const char *policy, unsigned n_family)
{
    struct exit_policy ep;
    struct desc d;
    size_t len;

    memset(&d, 0, sizeof(d));
    memset(&ep, 0, sizeof(ep));
    if (policy) {
        if (exit_policy_parse(&ep, policy, NULL, NULL) != 0 ||
            exit_policy_encode(&ep, d.policy, sizeof(d.policy), &len) != 0)
            abort();
        d.policy_len = (uint8_t)len;
    }
    d.flags = flags;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = (uint8_t)n;
    d.published_ms = 1700000000000ull;
    d.expires_ms = d.published_ms + 3600000;
    memcpy(d.id_pk, id.pk, OVL_ED25519_PK);
    memset(d.onion_pk, 0x5a, sizeof(d.onion_pk));
    d.capacity = capacity;
    for (unsigned i = 0; i < n; i++)
        snprintf(d.uris[i], sizeof(d.uris[i]), "%s", uris[i]);
    d.n_family = (uint8_t)n_family;
    for (unsigned i = 0; i < n_family; i++)
        memset(d.family[i], 0xf0 + (int)i, OVL_ED25519_PK);
    if (n_family)
        d.flags |= DESC_FAMILY;
    if (desc_sign(&d, &id, out, DESC_MAX_LEN, &len) != 0)
        abort();
    return len;
}

static void seeds(const char *dir)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    static const char *const four[] = {"tcp://[::1]:7001", "quic://relay.example.org:443",
                                       "tcp://10.1.2.3:65535", "quic://[2001:db8::7]:9"};
    static struct fuzz_seed s;
    uint8_t d[DESC_MAX_LEN];
    size_t len;

    len = make_desc(d, DESC_RELAY, one, 1, 0, NULL, 0);
    s.len = 0;
    seed_u8(&s, 0);
    seed_put(&s, d, len);
    fuzz_write_seed(dir, "raw-relay", s.buf, s.len);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, d, len - OVL_SIG_LEN);
    fuzz_write_seed(dir, "signed-relay", s.buf, s.len);
    len = make_desc(d, DESC_RELAY | DESC_ENDPOINT, four, 4, 12345, NULL, 0);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, d, len - OVL_SIG_LEN);
    fuzz_write_seed(dir, "signed-endpoint-4-uris", s.buf, s.len);
    len = make_desc(d, DESC_RELAY | DESC_EXIT, one, 1, 0,
                    "reject 10.0.0.0/8:*, reject [fc00::]/7:*, accept *:80, accept *:443, "
                    "accept [2001:db8::1]:6660-6669, reject *:*",
                    0);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, d, len - OVL_SIG_LEN);
    fuzz_write_seed(dir, "signed-exit-policy", s.buf, s.len);
    len = make_desc(d, DESC_RELAY, one, 1, 0, NULL, 2);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, d, len - OVL_SIG_LEN);
    fuzz_write_seed(dir, "signed-family", s.buf, s.len);
    len = make_desc(d, DESC_RELAY | DESC_EXIT, four, 4, 0, "accept *:443, reject *:*",
                    DESC_FAMILY_MAX);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, d, len - OVL_SIG_LEN);
    fuzz_write_seed(dir, "signed-exit-family-8", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_identity(&id, 10);
    fuzz_seeds(seeds);
    return 0;
}

/* What must hold for a descriptor that parsed from buf (len bytes). */
static void check_parsed(const struct desc *d, const uint8_t *buf, size_t len)
{
    uint8_t out[DESC_MAX_LEN];
    size_t olen;

    FUZZ_ASSERT(d->n_uris >= 1 && d->n_uris <= DESC_MAX_URIS);
    for (unsigned i = 0; i < d->n_uris; i++) {
        struct ovl_uri u;

        FUZZ_ASSERT(memchr(d->uris[i], '\0', OVL_URI_MAX) != NULL);
        FUZZ_ASSERT(uri_parse(&u, d->uris[i]) == 0 && u.port != 0);
    }
    FUZZ_ASSERT(!desc_expired(d, d->published_ms) && desc_expired(d, d->expires_ms));
    if (d->flags & DESC_EXIT) {
        struct exit_policy ep;

        FUZZ_ASSERT((d->flags & DESC_RELAY) && d->policy_len > 0 &&
                    exit_policy_decode(&ep, d->policy, d->policy_len) == 0);
    } else {
        FUZZ_ASSERT(d->policy_len == 0);
    }
    if (d->flags & DESC_FAMILY) {
        FUZZ_ASSERT((d->flags & DESC_RELAY) && d->n_family >= 1 && d->n_family <= DESC_FAMILY_MAX);
        for (unsigned i = 0; i < d->n_family; i++) {
            FUZZ_ASSERT(memcmp(d->family[i], d->id_pk, OVL_ED25519_PK) != 0);
            for (unsigned j = 0; j < i; j++)
                FUZZ_ASSERT(memcmp(d->family[i], d->family[j], OVL_ED25519_PK) != 0);
        }
    } else {
        FUZZ_ASSERT(d->n_family == 0);
    }
    /* Only the fixed identity can sign it again; a raw input that parsed
     * carried someone else's valid signature. */
    if (memcmp(d->id_pk, id.pk, OVL_ED25519_PK) != 0)
        return;
    FUZZ_ASSERT(desc_sign(d, &id, out, sizeof(out), &olen) == 0);
    FUZZ_ASSERT(olen == len && memcmp(out, buf, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    bool sign;
    size_t body, len;
    uint8_t *buf;
    struct desc d;
    int rc;

    fuzz_begin();
    sign = (fz_u8(&in) & 1) != 0;
    body = in.n;
    len = body + (sign ? OVL_SIG_LEN : 0);
    /* Too long either way; the raw mode covers the length check. */
    if (sign && body > DESC_MAX_LEN)
        return 0;
    buf = malloc(len ? len : 1); /* exact size: ASan sees any read past it */
    if (!buf)
        return 0;
    fz_bytes(&in, buf, body);
    if (sign) {
        if (body >= ID_OFF + OVL_ED25519_PK)
            memcpy(buf + ID_OFF, id.pk, OVL_ED25519_PK);
        FUZZ_ASSERT(ovl_sign(&id, buf, body, buf + body) == 0);
    }
    rc = desc_parse(&d, buf, len);
    if (sign)
        FUZZ_ASSERT(rc != OVL_ECRYPTO);
    if (rc == 0)
        check_parsed(&d, buf, len);
    free(buf);
    return 0;
}
