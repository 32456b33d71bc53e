/* fuzz_idesc.c - inbound descriptors of hidden destinations
 * (src/dir/idesc.h: idesc_parse, idesc_sign, idesc_accept).
 *
 * idesc_parse checks every field before the signature, so raw bytes reach
 * the whole decoder; only a descriptor that decodes also needs a valid
 * signature, which no mutation finds. So the harness can sign for it:
 *
 * Input: mode(1) | flip(2, LE), then
 *   mode bit 0 clear (raw): the rest is an inbound descriptor as received;
 *   mode bit 0 set (signed): the rest is a body without its signature; the
 *     harness writes the fixed identity's key into id_pk (bytes 28..59,
 *     when the body is that long) and appends its signature over the
 *     domain string and the body, as an honest node would, then parses.
 *
 * Properties: a signed input never fails on the signature; a descriptor
 * that decodes has the length its n_intro says, a life of at most an hour,
 * unused entries zero, signs (idesc_sign) back to exactly its bytes, which
 * decode to the same descriptor, is accepted under its own key at its
 * publication time and refused as expired, replayed and for another key
 * when it should be; with bit flip / 512 % 8 of byte flip % L changed it
 * is refused.
 */
#include <string.h>

#include "dir/idesc.h"
#include "fuzz.h"
#include "lib/bytes.h"

#define ID_OFF     28 /* id_pk's offset in an inbound descriptor */
#define DOMAIN_LEN (sizeof(IDESC_SIG_DOMAIN) - 1)
#define NOW        1700000000000ull

static struct ovl_identity id, other;

/* A valid inbound descriptor of the fixed identity with n relays. */
static size_t make_idesc(uint8_t *out, unsigned n, uint64_t seq, uint8_t suites)
{
    struct idesc d;
    size_t len;

    memset(&d, 0, sizeof(d));
    d.suites = suites;
    d.n_intro = (uint8_t)n;
    d.seq = seq;
    d.published_ms = NOW;
    d.expires_ms = NOW + IDESC_MAX_LIFE_MS;
    memcpy(d.id_pk, id.pk, OVL_ED25519_PK);
    memset(d.onion_pk, 0x5a, sizeof(d.onion_pk));
    for (unsigned i = 0; i < n; i++) {
        struct ovl_identity relay;
        uint8_t cookie[32];

        fuzz_identity(&relay, 20 + i);
        memcpy(d.intro[i].relay_pk, relay.pk, OVL_ED25519_PK);
        ovl_identity_wipe(&relay);
        fuzz_key(cookie, "ovl fuzz idesc cookie", i);
        memcpy(d.intro[i].cookie, cookie, IDESC_COOKIE_LEN);
    }
    if (idesc_sign(&d, &id, out, IDESC_MAX_LEN, &len) != 0)
        abort();
    return len;
}

static void put_seed(const char *dir, const char *name, uint8_t mode, uint16_t flip,
                     const uint8_t *p, size_t n)
{
    static struct fuzz_seed s;

    s.len = 0;
    seed_u8(&s, mode);
    seed_u16(&s, flip);
    seed_put(&s, p, n);
    fuzz_write_seed(dir, name, s.buf, s.len);
}

static void seeds(const char *dir)
{
    uint8_t d[IDESC_MAX_LEN];
    char name[32];
    size_t len;

    len = make_idesc(d, 1, 1, OVL_AEAD_ALL);
    put_seed(dir, "raw-1-relay", 0, 0, d, len);
    len = make_idesc(d, 4, 1000, OVL_AEAD_ALL);
    put_seed(dir, "raw-4-relays", 0, 4000, d, len);
    for (unsigned n = 1; n <= IDESC_MAX_INTRO; n++) {
        len = make_idesc(d, n, n, n == 2 ? OVL_AEAD_CHACHA20POLY1305 : OVL_AEAD_ALL);
        snprintf(name, sizeof(name), "signed-%u-relay%s", n, n > 1 ? "s" : "");
        put_seed(dir, name, 1, (uint16_t)(n * 1031), d, len - OVL_SIG_LEN);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_identity(&id, 11);
    fuzz_identity(&other, 12);
    fuzz_seeds(seeds);
    return 0;
}

/* Sign body (len bytes) with the fixed identity as idesc_sign does: the
 * domain string first. sig receives the signature. */
static void sign_body(const uint8_t *body, size_t len, uint8_t sig[OVL_SIG_LEN])
{
    uint8_t msg[DOMAIN_LEN + IDESC_MAX_LEN];

    memcpy(msg, IDESC_SIG_DOMAIN, DOMAIN_LEN);
    memcpy(msg + DOMAIN_LEN, body, len);
    FUZZ_ASSERT(ovl_sign(&id, msg, DOMAIN_LEN + len, sig) == 0);
}

/* What must hold for a descriptor d that decoded from buf (len bytes). */
static void check_parsed(const struct idesc *d, uint8_t *buf, size_t len, uint16_t flip)
{
    static const struct idesc_intro none;
    uint8_t out[IDESC_MAX_LEN];
    struct idesc back;
    size_t olen, at = flip % len;

    FUZZ_ASSERT(d->n_intro >= 1 && d->n_intro <= IDESC_MAX_INTRO);
    FUZZ_ASSERT(len == IDESC_LEN(d->n_intro) && d->flags == 0);
    FUZZ_ASSERT(d->expires_ms > d->published_ms &&
                d->expires_ms - d->published_ms <= IDESC_MAX_LIFE_MS);
    for (unsigned i = d->n_intro; i < IDESC_MAX_INTRO; i++)
        FUZZ_ASSERT(memcmp(&d->intro[i], &none, sizeof(none)) == 0);
    FUZZ_ASSERT(idesc_accept(d, d->id_pk, d->published_ms, 0, false) == IDESC_OK);
    FUZZ_ASSERT(idesc_accept(d, d->id_pk, d->expires_ms, 0, false) == IDESC_EXPIRED);
    FUZZ_ASSERT(idesc_accept(d, d->id_pk, d->published_ms, d->seq, true) == IDESC_REPLAY);
    FUZZ_ASSERT(idesc_accept(d, other.pk, d->published_ms, 0, false) == IDESC_OTHER_KEY ||
                memcmp(d->id_pk, other.pk, OVL_ED25519_PK) == 0);

    /* One changed bit anywhere is refused, and nothing of it kept. */
    buf[at] ^= (uint8_t)(1u << (flip / 512 % 8));
    FUZZ_ASSERT(idesc_parse(&back, buf, len) != 0 && back.n_intro == 0);
    buf[at] ^= (uint8_t)(1u << (flip / 512 % 8));

    /* Only the fixed identity can sign it again; a raw input that decoded
     * carried someone else's valid signature. */
    if (memcmp(d->id_pk, id.pk, OVL_ED25519_PK) != 0)
        return;
    FUZZ_ASSERT(idesc_sign(d, &id, out, sizeof(out), &olen) == 0);
    FUZZ_ASSERT(olen == len && memcmp(out, buf, len) == 0);
    FUZZ_ASSERT(idesc_parse(&back, out, olen) == 0 && memcmp(&back, d, sizeof(back)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    bool sign;
    uint16_t flip;
    size_t body, len;
    uint8_t *buf;
    struct idesc d;
    int rc;

    fuzz_begin();
    sign = (fz_u8(&in) & 1) != 0;
    flip = fz_u16(&in);
    body = in.n;
    len = body + (sign ? OVL_SIG_LEN : 0);
    /* Too long either way; the raw mode covers the length check. */
    if (sign && len > IDESC_MAX_LEN)
        return 0;
    buf = malloc(len ? len : 1); /* exact size: ASan sees any read past it */
    if (!buf)
        return 0;
    fz_bytes(&in, buf, body);
    if (sign) {
        if (body >= ID_OFF + OVL_ED25519_PK)
            memcpy(buf + ID_OFF, id.pk, OVL_ED25519_PK);
        sign_body(buf, body, buf + body);
    }
    rc = idesc_parse(&d, buf, len);
    FUZZ_ASSERT(rc == 0 || rc == OVL_EPROTO || rc == OVL_ECRYPTO);
    if (sign)
        FUZZ_ASSERT(rc != OVL_ECRYPTO);
    if (rc == 0)
        check_parsed(&d, buf, len, flip);
    else
        FUZZ_ASSERT(d.n_intro == 0 && d.seq == 0);
    free(buf);
    return 0;
}
