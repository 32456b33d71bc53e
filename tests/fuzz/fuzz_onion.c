/* fuzz_onion.c - chain setup headers and data layers (src/chain/onion.h).
 *
 * Hops have fixed onion key pairs (fuzz_x25519(i)) and, for the data
 * phase, fixed data keys (made here from fixed secrets, in either suite).
 * Input: mode(1), then by mode % 6:
 *   0 setup, raw: a header (ONION_HDR_LEN bytes) peeled by hop 0;
 *   1 setup, sealed: eph_sk(32) | info(40) | rest of the header; the
 *     harness seals the info into the front slot for hop 0 the way
 *     docs/PROTOCOL.md ("Chains: crypto") says, so that onion_setup_peel
 *     gets past the AEAD to the info checks, and peels;
 *   2 setup, whole chain: n(1) | suite(1) | n x lifetime(4) | changes;
 *     onion_setup_build for hops 0..n-1, then the changes, then every hop
 *     peels in turn;
 *   3 forward data: chain | body(888) | changes; onion_fwd_wrap, the
 *     changes, then onion_fwd_peel at each hop;
 *   4 backward data: chain | origin(1) | body(888) | changes;
 *     onion_back_originate at the origin, onion_back_add at every hop
 *     before it, the changes, then onion_back_unwrap;
 *   5 data, raw: suite(1) | next(8) | a cell payload, given to
 *     onion_fwd_peel and onion_back_unwrap.
 * A chain is n(1) | suite(1) | n x (counter(1) | lag(1)): the counter a
 * hop's cell is made under (below 0xf0 as is, else that far below
 * UINT64_MAX) and how far the receiver's next expected counter trails it
 * (lag % 12; 11 means one ahead: a replay). Changes are count(1) x
 * (at(2) | xor(1)).
 *
 * Properties: a hop accepts a cell or header exactly when nothing in it
 * changed and its counter is inside the receiver's window (a sealed slot:
 * exactly when its info is well formed); then it gets the sender's keys,
 * info and body, and counters move past the one used, by at most the
 * window; a refused header or cell and its counters are left unchanged.
 */
#include <string.h>

#include "chain/onion.h"
#include "fuzz.h"

#define HDR_REST (ONION_HDR_LEN - ONION_SLOT_LEN)

static uint8_t hop_pk[ONION_MAX_HOPS][OVL_X25519_LEN], hop_sk[ONION_MAX_HOPS][OVL_X25519_LEN];
static struct onion_keys keys[2][ONION_MAX_HOPS]; /* [0] ChaCha20-Poly1305, [1] AES or ChaCha */
static uint8_t suite_bits[2];

static void make_keys(void)
{
    enum ovl_aead_suite s[2] = {OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_CHACHA20POLY1305};
    uint8_t k[32];

    if (ovl_aead_available() & OVL_AEAD_AES256GCM)
        s[1] = OVL_AEAD_AES256GCM;
    for (unsigned j = 0; j < 2; j++) {
        suite_bits[j] = (uint8_t)s[j];
        for (unsigned i = 0; i < ONION_MAX_HOPS; i++) {
            struct onion_keys *o = &keys[j][i];

            o->suite = s[j];
            fuzz_key(k, "onion fwd", i);
            if (ovl_aead_init(&o->fwd, s[j], k) != 0)
                abort();
            fuzz_key(k, "onion back", i);
            if (ovl_aead_init(&o->back, s[j], k) != 0)
                abort();
            fuzz_key(k, "onion orig", i);
            if (ovl_aead_init(&o->orig, s[j], k) != 0)
                abort();
            fuzz_key(o->fwd_ks, "onion fwd stream", i);
            fuzz_key(o->back_ks, "onion back stream", i);
            fuzz_key(o->junk_ks, "onion junk stream", i);
        }
    }
}

/* ---- inputs ------------------------------------------------------------- */

struct chain_in {
    unsigned n, suite;             /* hops; index into keys */
    uint64_t ctr[ONION_MAX_HOPS];  /* what each hop's cell is made under */
    uint64_t next[ONION_MAX_HOPS]; /* what each receiver expects next */
};

static void read_chain(struct fuzz_in *in, struct chain_in *c)
{
    c->n = fz_u8(in) % ONION_MAX_HOPS + 1;
    c->suite = fz_u8(in) & 1;
    for (unsigned i = 0; i < c->n; i++) {
        uint8_t sel = fz_u8(in), lag = fz_u8(in) % 12;

        c->ctr[i] = sel < 0xf0 ? sel : UINT64_MAX - (0xffu - sel);
        if (lag == 11)
            c->next[i] = c->ctr[i] == UINT64_MAX ? c->ctr[i] : c->ctr[i] + 1;
        else
            c->next[i] = c->ctr[i] >= lag ? c->ctr[i] - lag : 0;
    }
}

/* Whether a receiver expecting next accepts a cell made under ctr. */
static bool in_window(uint64_t ctr, uint64_t next)
{
    return ctr != UINT64_MAX && ctr >= next && ctr - next < ONION_WINDOW;
}

/* Apply count x (at | xor) to buf (len bytes); true when buf changed. */
static bool tamper(struct fuzz_in *in, uint8_t *buf, size_t len)
{
    unsigned n = fz_u8(in) % 8;
    bool changed = false;
    uint8_t *orig = malloc(len);

    if (!orig)
        abort();
    memcpy(orig, buf, len);
    for (unsigned i = 0; i < n; i++) {
        size_t at = fz_u16(in) % len;

        buf[at] ^= fz_u8(in);
    }
    changed = memcmp(orig, buf, len) != 0;
    free(orig);
    return changed;
}

/* ---- setup -------------------------------------------------------------- */

static bool info_valid(const uint8_t info[ONION_INFO_LEN])
{
    static const uint8_t zero[OVL_ED25519_PK];
    unsigned suite = info[1];
    bool zero_next = memcmp(info + 8, zero, sizeof(zero)) == 0;

    if (info[0] != ONION_HOP_RELAY && info[0] != ONION_HOP_EXIT)
        return false;
    if (suite == 0 || (suite & (suite - 1)) != 0 || !(suite & ovl_aead_available()))
        return false;
    if (info[2] != 0 || info[3] != 0)
        return false;
    return zero_next == (info[0] == ONION_HOP_EXIT);
}

/* Peel hdr at hop i; on failure hdr must be as it was. */
static int peel(uint8_t hdr[ONION_HDR_LEN], unsigned i, struct onion_hop_info *info,
                struct onion_keys *k)
{
    uint8_t before[ONION_HDR_LEN];
    int rc;

    memcpy(before, hdr, ONION_HDR_LEN);
    rc = onion_setup_peel(hdr, hop_pk[i], hop_sk[i], info, k);
    FUZZ_ASSERT(rc == 0 || rc == OVL_ECRYPTO || rc == OVL_EPROTO);
    if (rc != 0)
        FUZZ_ASSERT(memcmp(before, hdr, ONION_HDR_LEN) == 0);
    else
        FUZZ_ASSERT(k->suite == info->suite && info->flags == 0);
    return rc;
}

static void setup_raw(struct fuzz_in *in)
{
    uint8_t hdr[ONION_HDR_LEN];
    struct onion_hop_info info;
    struct onion_keys k;

    fz_bytes(in, hdr, sizeof(hdr));
    (void)peel(hdr, 0, &info, &k);
    onion_keys_wipe(&k);
}

/* Seal info into the front slot of hdr for hop 0 under eph_sk, as a
 * sender following the protocol would; false for a degenerate key. */
static bool seal_slot(uint8_t hdr[ONION_HDR_LEN], const uint8_t eph_sk[OVL_X25519_LEN],
                      const uint8_t info[ONION_INFO_LEN])
{
    static const char proto[] = "ovl-chain-v1";
    static const uint8_t zero_nonce[OVL_AEAD_NONCE];
    uint8_t ck[OVL_HASH_LEN], ikm[3 * OVL_X25519_LEN], prk[32], k_info[32];

    if (crypto_scalarmult_base(hdr, eph_sk) != 0 || crypto_scalarmult(ikm, eph_sk, hop_pk[0]) != 0)
        return false;
    memcpy(ikm + OVL_X25519_LEN, hdr, OVL_X25519_LEN);
    memcpy(ikm + 2 * OVL_X25519_LEN, hop_pk[0], OVL_X25519_LEN);
    ovl_hash2(ck, (const uint8_t *)proto, sizeof(proto) - 1, NULL, 0);
    crypto_generichash(prk, sizeof(prk), ikm, sizeof(ikm), ck, sizeof(ck));
    ovl_kdf_label(k_info, prk, "info");
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        hdr + OVL_X25519_LEN, hdr + OVL_X25519_LEN + ONION_INFO_LEN, NULL, info, ONION_INFO_LEN,
        hdr + ONION_SLOT_LEN, HDR_REST, NULL, zero_nonce, k_info);
    return true;
}

static void setup_sealed(struct fuzz_in *in)
{
    uint8_t eph_sk[OVL_X25519_LEN], info_b[ONION_INFO_LEN], hdr[ONION_HDR_LEN];
    struct onion_hop_info info;
    struct onion_keys k;
    int rc;

    fz_bytes(in, eph_sk, sizeof(eph_sk));
    fz_bytes(in, info_b, sizeof(info_b));
    fz_bytes(in, hdr + ONION_SLOT_LEN, HDR_REST);
    if (!seal_slot(hdr, eph_sk, info_b))
        return;
    rc = peel(hdr, 0, &info, &k);
    FUZZ_ASSERT((rc == 0) == info_valid(info_b));
    if (rc == 0) {
        FUZZ_ASSERT(info.type == info_b[0] && info.suite == info_b[1]);
        FUZZ_ASSERT(info.lifetime_s == (uint32_t)(info_b[4] | info_b[5] << 8 | info_b[6] << 16 |
                                                  (uint32_t)info_b[7] << 24));
        FUZZ_ASSERT(memcmp(info.next, info_b + 8, OVL_ED25519_PK) == 0);
        /* The next hop's header: hop 1 cannot open what was never sealed for it. */
        onion_keys_wipe(&k);
        FUZZ_ASSERT(peel(hdr, 1, &info, &k) != 0);
    }
    onion_keys_wipe(&k);
}

/* True when a and b hold the same key: they seal alike (their bytes
 * may differ, an AES-256-GCM context being a handle, see crypto.h). */
static bool same_aead(const struct ovl_aead *a, const struct ovl_aead *b)
{
    static const uint8_t msg[16], nonce[OVL_AEAD_NONCE];
    uint8_t x[sizeof(msg) + OVL_AEAD_TAG], y[sizeof(msg) + OVL_AEAD_TAG];

    return a->suite == b->suite && ovl_aead_seal(a, x, msg, sizeof(msg), NULL, 0, nonce) == 0 &&
           ovl_aead_seal(b, y, msg, sizeof(msg), NULL, 0, nonce) == 0 &&
           memcmp(x, y, sizeof(x)) == 0;
}

/* A hop makes its forward context on first use (onion.h): make it from
 * the kept key, as the hop's first cell would, and compare. */
static bool same_fwd(const struct onion_keys *hop, const struct ovl_aead *snd)
{
    struct ovl_aead f;
    bool same;

    if (hop->fwd.suite != 0)
        return same_aead(&hop->fwd, snd);
    memset(&f, 0, sizeof(f));
    if (ovl_aead_init(&f, hop->suite, hop->layer[0]) != 0)
        return false;
    same = same_aead(&f, snd);
    ovl_aead_wipe(&f);
    return same;
}

static void setup_chain(struct fuzz_in *in)
{
    struct onion_hop_info info[ONION_MAX_HOPS], got;
    struct onion_keys snd[ONION_MAX_HOPS], k;
    uint8_t hdr[ONION_HDR_LEN];
    unsigned n = fz_u8(in) % ONION_MAX_HOPS + 1;
    uint8_t suite = suite_bits[fz_u8(in) & 1];
    bool changed;

    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < n; i++) {
        info[i].type = i + 1 == n ? ONION_HOP_EXIT : ONION_HOP_RELAY;
        info[i].suite = suite;
        info[i].lifetime_s = fz_u32(in);
        if (info[i].type == ONION_HOP_RELAY)
            fuzz_key(info[i].next, "next hop id", i + 1);
    }
    FUZZ_ASSERT(onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])hop_pk, info, n, snd) ==
                0);
    changed = tamper(in, hdr, sizeof(hdr));
    memset(&k, 0, sizeof(k));
    for (unsigned i = 0; i < n; i++) {
        int rc;

        onion_keys_wipe(&k); /* the previous hop's */
        rc = peel(hdr, i, &got, &k);

        /* Hop 0 sees the whole header under its AEAD: any change stops it
         * there, and an unchanged header opens at every hop. */
        FUZZ_ASSERT((rc == 0) == !changed);
        if (rc != 0)
            break;
        FUZZ_ASSERT(got.type == info[i].type && got.suite == info[i].suite &&
                    got.lifetime_s == info[i].lifetime_s &&
                    memcmp(got.next, info[i].next, OVL_ED25519_PK) == 0);
        FUZZ_ASSERT(k.suite == snd[i].suite && same_fwd(&k, &snd[i].fwd) &&
                    memcmp(k.fwd_ks, snd[i].fwd_ks, 32) == 0 &&
                    memcmp(k.back_ks, snd[i].back_ks, 32) == 0);
    }
    onion_keys_wipe(&k);
    for (unsigned i = 0; i < n; i++)
        onion_keys_wipe(&snd[i]);
}

/* ---- data --------------------------------------------------------------- */

static void data_fwd(struct fuzz_in *in)
{
    struct chain_in c;
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    bool max = false, changed;
    int rc;

    read_chain(in, &c);
    fz_bytes(in, body, sizeof(body));
    for (unsigned i = 0; i < c.n; i++)
        max |= c.ctr[i] == UINT64_MAX;
    rc = onion_fwd_wrap(cell, keys[c.suite], c.n, c.ctr, body);
    FUZZ_ASSERT((rc == 0) == !max);
    if (rc != 0)
        return;
    changed = tamper(in, cell, sizeof(cell));
    for (unsigned i = 0; i < c.n; i++) {
        uint8_t before[OVL_CELL_PAYLOAD];
        uint64_t next = c.next[i];

        memcpy(before, cell, sizeof(cell));
        rc = onion_fwd_peel(cell, &keys[c.suite][i], &next);
        if (i == 0 && changed)
            FUZZ_ASSERT(rc != 0);
        if (!changed)
            FUZZ_ASSERT((rc == 0) == in_window(c.ctr[i], c.next[i]));
        if (rc != 0) {
            FUZZ_ASSERT(next == c.next[i] && memcmp(before, cell, sizeof(cell)) == 0);
            return;
        }
        FUZZ_ASSERT(!changed && next == c.ctr[i] + 1);
    }
    FUZZ_ASSERT(memcmp(cell + ONION_BODY_OFF, body, sizeof(body)) == 0);
}

static void data_back(struct fuzz_in *in)
{
    struct chain_in c;
    uint8_t body[ONION_BODY], got[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t ctr[ONION_MAX_HOPS], next[ONION_MAX_HOPS];
    unsigned o, origin = ONION_MAX_HOPS;
    bool ok = true, changed;
    int rc;

    read_chain(in, &c);
    o = fz_u8(in) % c.n;
    fz_bytes(in, body, sizeof(body));
    memcpy(ctr, c.ctr, sizeof(ctr));
    rc = onion_back_originate(cell, &keys[c.suite][o], &ctr[o], body);
    FUZZ_ASSERT((rc == 0) == (c.ctr[o] != UINT64_MAX));
    if (rc != 0)
        return;
    for (unsigned i = o; i-- > 0;) {
        rc = onion_back_add(cell, &keys[c.suite][i], &ctr[i]);
        FUZZ_ASSERT((rc == 0) == (c.ctr[i] != UINT64_MAX));
        if (rc != 0)
            return;
    }
    changed = tamper(in, cell, sizeof(cell));
    for (unsigned i = 0; i <= o; i++)
        ok &= in_window(c.ctr[i], c.next[i]);
    memcpy(next, c.next, sizeof(next));
    rc = onion_back_unwrap(got, &origin, keys[c.suite], c.n, next, cell);
    FUZZ_ASSERT((rc == 0) == (ok && !changed));
    if (rc != 0) {
        FUZZ_ASSERT(memcmp(next, c.next, c.n * sizeof(*next)) == 0);
        return;
    }
    FUZZ_ASSERT(origin == o && memcmp(got, body, sizeof(body)) == 0);
    for (unsigned i = 0; i < c.n; i++)
        FUZZ_ASSERT(next[i] == (i <= o ? c.ctr[i] + 1 : c.next[i]));
}

/* Bytes as received (a seed may be a real cell): whatever the outcome,
 * the contract on counters and on the cell holds. */
static void data_raw(struct fuzz_in *in)
{
    unsigned s = fz_u8(in) & 1;
    uint64_t next[ONION_MAX_HOPS], want = fz_u64(in);
    uint8_t cell[OVL_CELL_PAYLOAD], before[OVL_CELL_PAYLOAD], body[ONION_BODY];
    unsigned origin = ONION_MAX_HOPS;
    int rc;

    fz_bytes(in, cell, sizeof(cell));
    memcpy(before, cell, sizeof(cell));
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++)
        next[i] = want + i;
    rc = onion_back_unwrap(body, &origin, keys[s], ONION_MAX_HOPS, next, cell);
    FUZZ_ASSERT(rc == 0 || rc == OVL_ECRYPTO);
    FUZZ_ASSERT(memcmp(before, cell, sizeof(cell)) == 0);
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++) {
        if (rc == 0 && i <= origin)
            FUZZ_ASSERT(next[i] - (want + i) >= 1 && next[i] - (want + i) <= ONION_WINDOW);
        else
            FUZZ_ASSERT(next[i] == want + i);
    }
    next[0] = want;
    rc = onion_fwd_peel(cell, &keys[s][0], &next[0]);
    FUZZ_ASSERT(rc == 0 || rc == OVL_ECRYPTO);
    if (rc == 0)
        FUZZ_ASSERT(next[0] - want >= 1 && next[0] - want <= ONION_WINDOW);
    else
        FUZZ_ASSERT(next[0] == want && memcmp(before, cell, sizeof(cell)) == 0);
}

/* ---- seeds -------------------------------------------------------------- */

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    struct onion_hop_info info[3];
    struct onion_keys snd[3];
    uint8_t hdr[ONION_HDR_LEN], cell[OVL_CELL_PAYLOAD], body[ONION_BODY] = "hello";
    uint64_t ctr[3] = {0, 0, 0};

    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < 3; i++) {
        info[i].type = i == 2 ? ONION_HOP_EXIT : ONION_HOP_RELAY;
        info[i].suite = OVL_AEAD_CHACHA20POLY1305;
        info[i].lifetime_s = 600;
        if (i < 2)
            memset(info[i].next, 0x11 * (int)(i + 1), OVL_ED25519_PK);
    }
    if (onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])hop_pk, info, 3, snd) != 0)
        abort();
    s.len = 0;
    seed_u8(&s, 0);
    seed_put(&s, hdr, sizeof(hdr));
    fuzz_write_seed(dir, "setup-raw-valid", s.buf, s.len);
    /* Sealed slots: a relay's info and an exit's. */
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, "an ephemeral secret of 32 bytes!", 32);
    seed_put(&s, (const uint8_t[]){ONION_HOP_RELAY, OVL_AEAD_CHACHA20POLY1305, 0, 0, 88, 2, 0, 0},
             8);
    seed_put(&s, "the identity of the next hop....", 32);
    fuzz_write_seed(dir, "setup-sealed-relay", s.buf, s.len);
    s.len = 0;
    seed_u8(&s, 1);
    seed_put(&s, "an ephemeral secret of 32 bytes!", 32);
    seed_put(&s, (const uint8_t[]){ONION_HOP_EXIT, OVL_AEAD_CHACHA20POLY1305, 0, 0, 88, 2, 0, 0},
             8);
    fuzz_write_seed(dir, "setup-sealed-exit", s.buf, s.len);
    /* Whole chains: 3 hops clean, 8 hops with one changed byte. */
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2, 2, 0}, 3);
    for (unsigned i = 0; i < 3; i++)
        seed_u32(&s, 600);
    fuzz_write_seed(dir, "setup-chain-3", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){2, 7, 0}, 3);
    for (unsigned i = 0; i < 8; i++)
        seed_u32(&s, 60 * i);
    seed_u8(&s, 1);
    seed_u16(&s, 300);
    seed_u8(&s, 1);
    fuzz_write_seed(dir, "setup-chain-8-changed", s.buf, s.len);
    /* Forward and backward data: counters in and out of the window. */
    s.len = 0;
    seed_put(&s, (const uint8_t[]){3, 2, 0, 0, 0, 5, 3, 9, 2}, 9);
    seed_put(&s, body, sizeof(body));
    seed_u8(&s, 0);
    fuzz_write_seed(dir, "fwd-3", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){3, 0, 1, 0xfe, 7}, 5);
    seed_put(&s, body, sizeof(body));
    fuzz_write_seed(dir, "fwd-1-counter-near-max", s.buf, s.len);
    s.len = 0;
    seed_put(&s, (const uint8_t[]){4, 2, 0, 4, 0, 2, 2, 1, 1, 2}, 10);
    seed_put(&s, body, sizeof(body));
    seed_u8(&s, 0);
    fuzz_write_seed(dir, "back-3-from-exit", s.buf, s.len);
    /* A real forward cell as raw bytes. */
    if (onion_fwd_wrap(cell, keys[0], 3, ctr, body) != 0)
        abort();
    s.len = 0;
    seed_u8(&s, 5);
    seed_u8(&s, 0);
    seed_u64(&s, 0);
    seed_put(&s, cell, sizeof(cell));
    fuzz_write_seed(dir, "raw-fwd-cell", s.buf, s.len);
    for (unsigned i = 0; i < 3; i++)
        onion_keys_wipe(&snd[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++)
        fuzz_x25519(hop_pk[i], hop_sk[i], i);
    make_keys();
    fuzz_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};

    fuzz_begin();
    switch (fz_u8(&in) % 6) {
    case 0:
        setup_raw(&in);
        break;
    case 1:
        setup_sealed(&in);
        break;
    case 2:
        setup_chain(&in);
        break;
    case 3:
        data_fwd(&in);
        break;
    case 4:
        data_back(&in);
        break;
    default:
        data_raw(&in);
        break;
    }
    return 0;
}
