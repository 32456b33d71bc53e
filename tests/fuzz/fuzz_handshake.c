/* fuzz_handshake.c - the link handshake's two readers (src/core/handshake.h).
 *
 * Input: mode(1) | init_suites(1) | resp_suites(1) | init_rekey(1) |
 * resp_rekey(1), then by mode % 3:
 *   0: the rest is message 1 for a responder started for real;
 *   1: the rest is message 2 for an initiator that has sent message 1;
 *   2: a real exchange between the fixed initiator and responder, with
 *      n(1) x (which(1) | at(1) | xor(1)) byte changes applied to the
 *      messages on the way; mode bit 2 makes the initiator expect another
 *      identity than the responder's, bit 3 binds the initiator to a
 *      transport's value (hs_bind), bit 4 the responder, and bit 5 gives
 *      the responder another value than the initiator's (a middlebox).
 * Suites are masks (low two bits); a rekey of 0 keeps the default, others
 * go to hs_set_rekey as they are.
 *
 * Properties (mode 2): the exchange completes exactly when nothing was
 * changed, the initiator dialled the right identity, a suite is shared and
 * both ends bound to one value or neither bound; then both sides hold
 * matching keys, the responder's choice of suite, the smaller ratchet
 * interval and, bound, one confirmation. Message 1 carries a wall-clock time (not
 * checked by the reader), so its bytes differ between runs; the path an
 * input takes does not.
 */
#include <string.h>

#include "core/handshake.h"
#include "fuzz.h"

static struct ovl_identity ini, resp, other;

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    struct handshake hi;
    uint8_t m1[HS_INIT_LEN];

    /* A real message 1 from ini to resp, for mode 0. */
    if (hs_start_initiator(&hi, &ini, resp.pk, OVL_AEAD_ALL) != 0 || hs_write_init(&hi, m1) != 0)
        abort();
    hs_wipe(&hi);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){0, 3, 3, 0, 0}, 5);
    seed_put(&s, m1, sizeof(m1));
    fuzz_write_seed(dir, "init-valid", s.buf, s.len);
    /* Mode 1 cannot have a valid seed (message 1 holds the time): a
     * well-formed header and the right length. */
    memset(m1, 0, sizeof(m1));
    m1[0] = 2;
    m1[1] = 1;
    s.len = 0;
    seed_put(&s, (const uint8_t[]){1, 3, 3, 0, 0}, 5);
    seed_put(&s, m1, HS_RESP_LEN);
    fuzz_write_seed(dir, "resp-shaped", s.buf, s.len);
    /* Exchanges: clean, with suites and ratchets, and with a changed byte. */
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2, 3, 3, 0, 0, 0}, 6);
    fuzz_write_seed(dir, "exchange", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2, 2, 3, 12, 30, 0}, 6);
    fuzz_write_seed(dir, "exchange-chacha-rekey", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2, 3, 3, 0, 0, 1, 1, 40, 0x80}, 9);
    fuzz_write_seed(dir, "exchange-flip-m2", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){5, 3, 3, 0, 0, 0}, 6);
    fuzz_write_seed(dir, "exchange-wrong-peer", s.buf, s.len);
    /* Bound: both ends to one value, to two values, one end only (bits 6
     * and 7 only bring the mode back to 2 modulo 3). */
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2 | 8 | 16, 3, 3, 0, 0, 0}, 6);
    fuzz_write_seed(dir, "exchange-bound", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2 | 8 | 16 | 32 | 64, 3, 3, 0, 0, 0}, 6);
    fuzz_write_seed(dir, "exchange-bound-two-values", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2 | 16 | 128, 3, 3, 0, 0, 0}, 6);
    fuzz_write_seed(dir, "exchange-bound-responder-only", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_identity(&ini, 1);
    fuzz_identity(&resp, 2);
    fuzz_identity(&other, 3);
    fuzz_seeds(seeds);
    return 0;
}

/* Arguments every mode reads first. */
struct hs_args {
    uint32_t si, sr;
    uint8_t rekey_i, rekey_r;
};

/* Start a handshake and ask for a ratchet interval; false when it may not
 * start (no suite available), which is checked against the contract. */
static bool start(struct handshake *hs, bool initiator, const uint8_t *peer, uint32_t suites,
                  uint8_t rekey)
{
    int rc = initiator ? hs_start_initiator(hs, &ini, peer, suites)
                       : hs_start_responder(hs, &resp, suites);

    FUZZ_ASSERT((rc == 0) == ((suites & ovl_aead_available()) != 0));
    if (rc != 0) {
        FUZZ_ASSERT(hs->state == HS_FAILED);
        return false;
    }
    if (rekey != 0) {
        rc = hs_set_rekey(hs, rekey);
        FUZZ_ASSERT((rc == 0) == (rekey >= HS_REKEY_LOG2_MIN && rekey <= HS_REKEY_LOG2_MAX));
    }
    return true;
}

static void read_init(struct fuzz_in *in, const struct hs_args *a)
{
    struct handshake hr;
    struct hs_keys k;
    uint8_t m2[HS_RESP_LEN];
    uint8_t *m1 = malloc(in->n ? in->n : 1); /* exact size: ASan sees overreads */
    size_t len = in->n;

    if (!m1)
        return;
    fz_bytes(in, m1, len);
    if (start(&hr, false, NULL, a->sr, a->rekey_r)) {
        if (hs_read_init(&hr, m1, len) == 0) {
            FUZZ_ASSERT(len == HS_INIT_LEN && hr.state == HS_READY_RESP);
            FUZZ_ASSERT(hs_write_resp(&hr, m2, &k) == 0);
            hs_keys_wipe(&k);
        } else {
            FUZZ_ASSERT(hr.state == HS_FAILED);
        }
    }
    hs_wipe(&hr);
    free(m1);
}

static void read_resp(struct fuzz_in *in, const struct hs_args *a)
{
    struct handshake hi;
    struct hs_keys k;
    uint8_t m1[HS_INIT_LEN];
    uint8_t *m2 = malloc(in->n ? in->n : 1);
    size_t len = in->n;

    if (!m2)
        return;
    fz_bytes(in, m2, len);
    if (start(&hi, true, resp.pk, a->si, a->rekey_i)) {
        FUZZ_ASSERT(hs_write_init(&hi, m1) == 0);
        if (hs_read_resp(&hi, m2, len, &k) == 0) {
            FUZZ_ASSERT(len == HS_RESP_LEN && hi.state == HS_DONE);
            FUZZ_ASSERT((k.suite & a->si) != 0 && (k.suite & (k.suite - 1)) == 0);
        } else {
            FUZZ_ASSERT(hi.state == HS_FAILED);
        }
        hs_keys_wipe(&k);
    }
    hs_wipe(&hi);
    free(m2);
}

/* Apply the input's byte changes for message which (0 or 1) to m (len
 * bytes); return true when m differs from what was written. */
static bool tamper(struct fuzz_in *in, unsigned which, uint8_t *m, size_t len)
{
    struct fuzz_in flips = *in;
    uint8_t orig[HS_INIT_LEN];
    unsigned n = fz_u8(&flips) % 8;

    memcpy(orig, m, len);
    for (unsigned i = 0; i < n; i++) {
        uint8_t w = fz_u8(&flips), at = fz_u8(&flips), x = fz_u8(&flips);

        if ((w & 1) == which)
            m[at % len] ^= x;
    }
    return memcmp(orig, m, len) != 0;
}

/* Bind hs to the fixed value, changed in its last byte when other. */
static void bind(struct handshake *hs, bool other)
{
    uint8_t x[HS_BIND_LEN];

    memset(x, 0xa5, sizeof(x));
    x[HS_BIND_LEN - 1] ^= other;
    FUZZ_ASSERT(hs_bind(hs, x) == 0);
}

static void exchange(struct fuzz_in *in, const struct hs_args *a, uint8_t mode)
{
    bool wrong_peer = (mode & 4) != 0, bind_i = (mode & 8) != 0, bind_r = (mode & 16) != 0;
    bool agree = bind_i == bind_r && !(bind_i && (mode & 32));
    struct handshake hi, hr;
    struct hs_keys ki, kr;
    uint8_t m1[HS_INIT_LEN], m2[HS_RESP_LEN];
    uint32_t si = a->si & ovl_aead_available(), sr = a->sr & ovl_aead_available();
    bool ok_i = start(&hi, true, wrong_peer ? other.pk : resp.pk, a->si, a->rekey_i);
    bool ok_r = start(&hr, false, NULL, a->sr, a->rekey_r);
    uint8_t want_rekey_i = hi.rekey_log2, want_rekey_r = hr.rekey_log2;
    bool changed;
    int rc;

    memset(&ki, 0, sizeof(ki));
    memset(&kr, 0, sizeof(kr));
    if (!ok_i || !ok_r)
        goto out;
    if (bind_i)
        bind(&hi, false);
    if (bind_r)
        bind(&hr, (mode & 32) != 0);
    FUZZ_ASSERT(hs_write_init(&hi, m1) == 0);
    changed = tamper(in, 0, m1, sizeof(m1));
    rc = hs_read_init(&hr, m1, sizeof(m1));
    FUZZ_ASSERT((rc == 0) == (!changed && !wrong_peer && (si & sr) != 0 && agree));
    if (rc != 0)
        goto out;
    FUZZ_ASSERT(memcmp(hr.rs_ed, ini.pk, OVL_ED25519_PK) == 0);
    FUZZ_ASSERT(hs_write_resp(&hr, m2, &kr) == 0);
    changed = tamper(in, 1, m2, sizeof(m2));
    rc = hs_read_resp(&hi, m2, sizeof(m2), &ki);
    FUZZ_ASSERT((rc == 0) == !changed);
    if (rc != 0)
        goto out;
    FUZZ_ASSERT(memcmp(ki.tx, kr.rx, OVL_AEAD_KEY) == 0 && memcmp(ki.rx, kr.tx, OVL_AEAD_KEY) == 0);
    FUZZ_ASSERT(memcmp(ki.hash, kr.hash, OVL_HASH_LEN) == 0);
    FUZZ_ASSERT(memcmp(ki.peer_pk, resp.pk, OVL_ED25519_PK) == 0);
    FUZZ_ASSERT(memcmp(kr.peer_pk, ini.pk, OVL_ED25519_PK) == 0);
    FUZZ_ASSERT(ki.suite == kr.suite && ki.suite == ovl_aead_pick(si & sr));
    FUZZ_ASSERT(ki.rekey_log2 == kr.rekey_log2);
    FUZZ_ASSERT(ki.rekey_log2 == (want_rekey_i < want_rekey_r ? want_rekey_i : want_rekey_r));
    FUZZ_ASSERT(ki.flags == kr.flags && ki.flags == (bind_i ? HS_F_BOUND : 0u));
    FUZZ_ASSERT(memcmp(ki.confirm, kr.confirm, HS_CONFIRM_LEN) == 0);
out:
    hs_keys_wipe(&ki);
    hs_keys_wipe(&kr);
    hs_wipe(&hi);
    hs_wipe(&hr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct hs_args a;
    uint8_t mode;

    fuzz_begin();
    mode = fz_u8(&in);
    a.si = fz_u8(&in) & OVL_AEAD_ALL;
    a.sr = fz_u8(&in) & OVL_AEAD_ALL;
    a.rekey_i = fz_u8(&in);
    a.rekey_r = fz_u8(&in);
    switch (mode % 3) {
    case 0:
        read_init(&in, &a);
        break;
    case 1:
        read_resp(&in, &a);
        break;
    default:
        exchange(&in, &a, mode);
        break;
    }
    return 0;
}
