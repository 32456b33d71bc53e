/* idesc.c - inbound descriptors of hidden destinations (idesc.h).
 *
 * The encoder and the decoder share one set of field checks
 * (idesc_fields_ok) so that nothing this node signs could be refused
 * elsewhere. The length is fixed by n_intro, so the decoder checks it
 * before it reads anything past the header.
 */
#include "dir/idesc.h"

#include <string.h>

#include "lib/bytes.h"

#define DOMAIN_LEN   (sizeof(IDESC_SIG_DOMAIN) - 1)
#define OFF_SEQ      4
#define OFF_PUB      12
#define OFF_EXP      20
#define OFF_ID       28
#define OFF_ONION    60
#define OFF_INTRO    IDESC_FIXED_LEN
#define BODY_MAX     (IDESC_MAX_LEN - OVL_SIG_LEN)
#define SIGNED_MAX   (DOMAIN_LEN + BODY_MAX)
#define INTRO_COOKIE OVL_ED25519_PK /* the cookie's offset in one intro entry */

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Relays: none zero, none the node itself, no two alike; cookies: none
 * zero, no two alike. */
static bool intros_ok(const struct idesc *d)
{
    for (unsigned i = 0; i < d->n_intro; i++) {
        const struct idesc_intro *a = &d->intro[i];

        if (all_zero(a->relay_pk, OVL_ED25519_PK) || all_zero(a->cookie, IDESC_COOKIE_LEN))
            return false;
        if (memcmp(a->relay_pk, d->id_pk, OVL_ED25519_PK) == 0)
            return false;
        for (unsigned j = 0; j < i; j++) {
            if (memcmp(a->relay_pk, d->intro[j].relay_pk, OVL_ED25519_PK) == 0 ||
                memcmp(a->cookie, d->intro[j].cookie, IDESC_COOKIE_LEN) == 0)
                return false;
        }
    }
    return true;
}

/* Checks on the decoded fields that both idesc_sign and idesc_parse apply. */
static bool idesc_fields_ok(const struct idesc *d)
{
    if (d->flags != 0)
        return false;
    if (d->suites == 0 || (d->suites & ~OVL_AEAD_ALL))
        return false;
    if (d->n_intro < 1 || d->n_intro > IDESC_MAX_INTRO)
        return false;
    if (d->expires_ms <= d->published_ms || d->expires_ms - d->published_ms > IDESC_MAX_LIFE_MS)
        return false;
    if (all_zero(d->onion_pk, OVL_X25519_LEN))
        return false;
    return intros_ok(d);
}

/* Write IDESC_SIG_DOMAIN then the body (len bytes) into msg: what the
 * signature covers. */
static size_t signed_msg(uint8_t msg[SIGNED_MAX], const uint8_t *body, size_t len)
{
    memcpy(msg, IDESC_SIG_DOMAIN, DOMAIN_LEN);
    memcpy(msg + DOMAIN_LEN, body, len);
    return DOMAIN_LEN + len;
}

/* Encode d, sign it with id and write it into out (cap bytes). */
int idesc_sign(const struct idesc *d, const struct ovl_identity *id, uint8_t *out, size_t cap,
               size_t *len)
{
    uint8_t msg[SIGNED_MAX];
    size_t body, pos = OFF_INTRO;
    int rc;

    if (len)
        *len = 0;
    if (!d || !id || !out || !len || !idesc_fields_ok(d))
        return OVL_EINVAL;
    if (!ovl_equal(d->id_pk, id->pk, OVL_ED25519_PK))
        return OVL_EINVAL;
    body = IDESC_LEN(d->n_intro) - OVL_SIG_LEN;
    if (cap < body + OVL_SIG_LEN)
        return OVL_ETOOBIG;

    out[0] = IDESC_VERSION;
    out[1] = d->flags;
    out[2] = d->suites;
    out[3] = d->n_intro;
    st_le64(out + OFF_SEQ, d->seq);
    st_le64(out + OFF_PUB, d->published_ms);
    st_le64(out + OFF_EXP, d->expires_ms);
    memcpy(out + OFF_ID, d->id_pk, OVL_ED25519_PK);
    memcpy(out + OFF_ONION, d->onion_pk, OVL_X25519_LEN);
    for (unsigned i = 0; i < d->n_intro; i++) {
        memcpy(out + pos, d->intro[i].relay_pk, OVL_ED25519_PK);
        memcpy(out + pos + INTRO_COOKIE, d->intro[i].cookie, IDESC_COOKIE_LEN);
        pos += IDESC_INTRO_LEN;
    }
    rc = ovl_sign(id, msg, signed_msg(msg, out, body), out + body);
    if (rc != 0)
        return rc;
    *len = body + OVL_SIG_LEN;
    return 0;
}

/* Decode the fields of in (whose length the caller checked) into d. */
static void idesc_read(struct idesc *d, const uint8_t *in)
{
    size_t pos = OFF_INTRO;

    d->flags = in[1];
    d->suites = in[2];
    d->n_intro = in[3];
    d->seq = ld_le64(in + OFF_SEQ);
    d->published_ms = ld_le64(in + OFF_PUB);
    d->expires_ms = ld_le64(in + OFF_EXP);
    memcpy(d->id_pk, in + OFF_ID, OVL_ED25519_PK);
    memcpy(d->onion_pk, in + OFF_ONION, OVL_X25519_LEN);
    for (unsigned i = 0; i < d->n_intro; i++) {
        memcpy(d->intro[i].relay_pk, in + pos, OVL_ED25519_PK);
        memcpy(d->intro[i].cookie, in + pos + INTRO_COOKIE, IDESC_COOKIE_LEN);
        pos += IDESC_INTRO_LEN;
    }
}

/* Decode and verify one descriptor of exactly len bytes. */
int idesc_parse(struct idesc *d, const uint8_t *in, size_t len)
{
    uint8_t msg[SIGNED_MAX];
    size_t body;
    int rc = OVL_EPROTO;

    if (!d)
        return OVL_EINVAL;
    memset(d, 0, sizeof(*d));
    if (!in || len < IDESC_MIN_LEN || len > IDESC_MAX_LEN)
        return OVL_EPROTO;
    /* n_intro fixes the length: check both before reading the entries. */
    if (in[0] != IDESC_VERSION || in[3] < 1 || in[3] > IDESC_MAX_INTRO || len != IDESC_LEN(in[3]))
        return OVL_EPROTO;
    body = len - OVL_SIG_LEN;
    idesc_read(d, in);
    if (idesc_fields_ok(d)) {
        size_t n = signed_msg(msg, in, body);
        rc = ovl_verify(d->id_pk, msg, n, in + body) == 0 ? 0 : OVL_ECRYPTO;
    }
    if (rc != 0)
        memset(d, 0, sizeof(*d));
    return rc;
}

/* Judge a verified descriptor for want_id at now_ms against have_seq. */
enum idesc_verdict idesc_accept(const struct idesc *d, const uint8_t want_id[OVL_ED25519_PK],
                                uint64_t now_ms, uint64_t have_seq, bool have_any)
{
    if (!d || !want_id || memcmp(d->id_pk, want_id, OVL_ED25519_PK) != 0)
        return IDESC_OTHER_KEY;
    if (now_ms >= d->expires_ms)
        return IDESC_EXPIRED;
    /* Written as a difference: now_ms + IDESC_SKEW_MS could wrap. */
    if (d->published_ms > now_ms && d->published_ms - now_ms > IDESC_SKEW_MS)
        return IDESC_FUTURE;
    if (have_any && d->seq < have_seq)
        return IDESC_STALE;
    if (have_any && d->seq == have_seq)
        return IDESC_REPLAY;
    return IDESC_OK;
}

/* Return the name of verdict v. */
const char *idesc_verdict_name(enum idesc_verdict v)
{
    switch (v) {
    case IDESC_OK:
        return "ok";
    case IDESC_OTHER_KEY:
        return "other_key";
    case IDESC_EXPIRED:
        return "expired";
    case IDESC_FUTURE:
        return "future";
    case IDESC_STALE:
        return "stale";
    case IDESC_REPLAY:
        return "replay";
    case IDESC_VERDICTS:
        break;
    }
    return "unknown";
}
