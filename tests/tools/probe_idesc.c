/* probe_idesc.c - ovl-probe idesc: inbound descriptors a bootstrap must refuse.
 *
 *   ovl-probe idesc HOST PORT BS_ID [--relay-key FILE] [--timeout-ms N]
 *
 * Over one authenticated link to the bootstrap at HOST:PORT, as the exit
 * of a hidden node's chain would (docs/PROTOCOL.md 22.3), it asks the
 * bootstrap to hold inbound descriptors of a fresh hidden identity of its
 * own, one DIR_IDESC request at a time, in this order (what a bootstrap
 * answers, and the counter, in brackets):
 *
 *   fresh      valid, seq 10                       (0 ok)
 *   replay     the same bytes again                (5 refused, replay)
 *   stale      seq 5, signed anew                  (5 refused, stale)
 *   newer      seq 11                              (0 ok)
 *   expired    seq 12, expired an hour ago         (1 bad, expired)
 *   future     seq 12, published an hour ahead     (1 bad, future)
 *   badsig     seq 12, one signature byte flipped  (1 bad, bad_sig)
 *   malformed  seq 12, n_intro 0, yet well signed  (1 bad, bad)
 *   relay      only with --relay-key: a valid one signed with the key in
 *              FILE, a relay's identity.key        (5 refused, relay)
 *
 * The refused ones after newer carry seq 12, so a bootstrap that held any
 * of them would answer it to a lookup instead of newer's 11. Introduction
 * relays, cookies and the onion key are random: nothing is ever sent to
 * them. The probe prints "id ID" (the hidden identity) first, then
 * "NAME STATUS" per request, STATUS the reply's status byte; it judges no
 * status (the test does) and exits 0 once every request was answered, 1
 * when one was not (a line says why) or the link failed, all within the
 * probe's deadline.
 */
#include <stdio.h>
#include <string.h>

#include "dir/dirmsg.h"
#include "dir/idesc.h"
#include "lib/clock.h"
#include "lib/encode.h"
#include "lib/err.h"
#include "probe.h"

#define PROBE_IDESC_LIFE_MS (30 * 60 * 1000ull)
#define PROBE_HOUR_MS       (60 * 60 * 1000ull)
#define PROBE_DOMAIN_LEN    (sizeof(IDESC_SIG_DOMAIN) - 1)

enum idesc_kind {
    IK_FRESH,
    IK_REPLAY,
    IK_STALE,
    IK_NEWER,
    IK_EXPIRED,
    IK_FUTURE,
    IK_BADSIG,
    IK_MALFORMED,
    IK_RELAY,
    IK_KINDS
};

static const char *const idesc_kind_names[IK_KINDS] = {
    "fresh", "replay", "stale", "newer", "expired", "future", "badsig", "malformed", "relay",
};

struct idesc_run {
    struct probe *p;
    struct idesc tpl;             /* what every descriptor shares but its key and times */
    struct ovl_identity hid, rid; /* the hidden identity; the relay's (--relay-key) */
    uint8_t fresh[IDESC_MAX_LEN]; /* fresh's bytes, sent again as replay */
    size_t fresh_len;
    uint32_t req_id;
};

/* Random bytes that are never all zero. */
static void random_nonzero(uint8_t *b, size_t len)
{
    ovl_random(b, len);
    b[0] |= 1;
}

/* Sign the template as id's with seq and its times into out (IDESC_MAX_LEN). */
static int idesc_make(const struct idesc_run *r, const struct ovl_identity *id, uint64_t seq,
                      uint64_t published_ms, uint64_t expires_ms, uint8_t *out, size_t *len)
{
    struct idesc d = r->tpl;

    d.seq = seq;
    d.published_ms = published_ms;
    d.expires_ms = expires_ms;
    memcpy(d.id_pk, id->pk, OVL_ED25519_PK);
    return idesc_sign(&d, id, out, IDESC_MAX_LEN, len);
}

/* A descriptor without introduction relays (idesc_sign refuses to make
 * one): a valid one's fixed fields with n_intro 0, signed the same way,
 * so that only its shape is wrong. */
static int idesc_make_empty(const struct idesc_run *r, uint64_t now, uint8_t *out, size_t *len)
{
    uint8_t msg[PROBE_DOMAIN_LEN + IDESC_FIXED_LEN];
    int rc = idesc_make(r, &r->hid, 12, now, now + PROBE_IDESC_LIFE_MS, out, len);

    if (rc != 0)
        return rc;
    out[3] = 0; /* n_intro */
    memcpy(msg, IDESC_SIG_DOMAIN, PROBE_DOMAIN_LEN);
    memcpy(msg + PROBE_DOMAIN_LEN, out, IDESC_FIXED_LEN);
    *len = IDESC_LEN(0);
    return ovl_sign(&r->hid, msg, sizeof(msg), out + IDESC_FIXED_LEN);
}

/* Build the request of kind k into out (IDESC_MAX_LEN bytes). */
static int idesc_build(const struct idesc_run *r, enum idesc_kind k, uint8_t *out, size_t *len)
{
    const struct ovl_identity *h = &r->hid;
    uint64_t now = clock_wall_ms(), end = now + PROBE_IDESC_LIFE_MS;
    int rc;

    switch (k) {
    case IK_FRESH:
    case IK_REPLAY:
        memcpy(out, r->fresh, r->fresh_len);
        *len = r->fresh_len;
        return 0;
    case IK_STALE:
        return idesc_make(r, h, 5, now, end, out, len);
    case IK_NEWER:
        return idesc_make(r, h, 11, now, end, out, len);
    case IK_EXPIRED:
        return idesc_make(r, h, 12, now - 2 * PROBE_HOUR_MS, now - PROBE_HOUR_MS, out, len);
    case IK_FUTURE:
        return idesc_make(r, h, 12, now + PROBE_HOUR_MS, end + PROBE_HOUR_MS, out, len);
    case IK_BADSIG:
        rc = idesc_make(r, h, 12, now, end, out, len);
        if (rc == 0)
            out[*len - OVL_SIG_LEN + 9] ^= 0x20;
        return rc;
    case IK_MALFORMED:
        return idesc_make_empty(r, now, out, len);
    case IK_RELAY:
        return idesc_make(r, &r->rid, 12, now, end, out, len);
    default:
        return OVL_EINVAL;
    }
}

/* Send raw (len bytes) as one DIR_IDESC request and wait for its reply's
 * status. */
static int idesc_ask(struct probe *p, uint32_t req_id, const uint8_t *raw, size_t len,
                     uint8_t *status)
{
    uint8_t msg[1 + IDESC_MAX_LEN], rep[64];
    size_t rep_len = 0;
    int rc;

    msg[0] = DIR_IDESC;
    memcpy(msg + 1, raw, len);
    rc = probe_dir_ask(p, req_id, msg, 1 + len, rep, sizeof(rep), &rep_len);
    if (rc == 0)
        rc = rep_len >= 2 && rep[0] == DIR_IDESC ? 0 : OVL_EPROTO;
    if (rc == 0)
        *status = rep[1];
    return rc;
}

/* Make the template: one introduction relay, random keys and cookie. */
static void idesc_template(struct idesc *d)
{
    memset(d, 0, sizeof(*d));
    d->suites = (uint8_t)(ovl_aead_available() & 3u);
    d->n_intro = 1;
    random_nonzero(d->onion_pk, sizeof(d->onion_pk));
    random_nonzero(d->intro[0].relay_pk, sizeof(d->intro[0].relay_pk));
    random_nonzero(d->intro[0].cookie, sizeof(d->intro[0].cookie));
}

/* Send every request in turn, printing each reply's status. */
static int idesc_all(struct idesc_run *r)
{
    uint8_t buf[IDESC_MAX_LEN], status = 0;
    unsigned kinds = r->p->relay_key ? IK_KINDS : IK_RELAY;
    uint64_t now = clock_wall_ms();
    size_t len = 0;
    int rc = idesc_make(r, &r->hid, 10, now, now + PROBE_IDESC_LIFE_MS, r->fresh, &r->fresh_len);

    if (rc == 0)
        rc = probe_open(r->p, r->p->host, r->p->port, r->p->peer_pk);
    for (unsigned k = 0; rc == 0 && k < kinds; k++) {
        rc = idesc_build(r, (enum idesc_kind)k, buf, &len);
        if (rc == 0)
            rc = idesc_ask(r->p, ++r->req_id, buf, len, &status);
        if (rc != 0)
            printf("%s failed: %s\n", idesc_kind_names[k], ovl_strerror(rc));
        else
            printf("%s %u\n", idesc_kind_names[k], (unsigned)status);
    }
    return rc;
}

/* Run the idesc mode; return the exit status. */
int mode_idesc(struct probe *p)
{
    struct idesc_run r = {.p = p};
    char id[OVL_NODE_ID_LEN + 1];
    int rc = ovl_identity_generate(&r.hid);

    if (rc == 0 && p->relay_key) {
        rc = ovl_identity_load(&r.rid, p->relay_key, false);
        if (rc != 0)
            printf("cannot load %s: %s\n", p->relay_key, ovl_strerror(rc));
    }
    if (rc == 0) {
        idesc_template(&r.tpl);
        node_id_format(id, r.hid.pk);
        printf("id %s\n", id);
        fflush(stdout);
        rc = idesc_all(&r);
    }
    ovl_identity_wipe(&r.hid);
    ovl_identity_wipe(&r.rid);
    return rc == 0 ? 0 : 1;
}
