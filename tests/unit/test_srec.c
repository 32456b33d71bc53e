/* test_srec.c - stream records sealed end to end (src/client/srec.h), and
 * the tombstones that keep a replayed open from opening twice
 * (msg_rx_seen, src/client/msg.h).
 */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "client/msg.h"
#include "client/srec.h"
#include "lib/bytes.h"

static const uint8_t sid0[STREAM_SID] = {9, 8, 7, 6, 5, 4, 3, 2};

/* Two onion keys: [0] an old one, [1] the one the opener seals to. */
static struct dir_onion onion[2];

static void make_keys(void)
{
    for (int i = 0; i < 2; i++)
        ovl_x25519_keypair(onion[i].pk, onion[i].sk);
}

/* A frame of type with n data bytes (a SF_OPEN carries args port 80). */
static size_t make_frame(uint8_t *f, uint8_t type, size_t n)
{
    size_t h = STREAM_HDR;

    memset(f, 0, STREAM_HDR);
    f[0] = type;
    memcpy(f + 2, sid0, STREAM_SID);
    st_le64(f + 18, 77);
    if (type == SF_OPEN) {
        f[h++] = 2;
        st_be16(f + h, 80);
        h += 2;
    }
    for (size_t i = 0; i < n; i++)
        f[h + i] = (uint8_t)(i * 13 + 1);
    return h + n;
}

START_TEST(round_trip)
{
    struct srec opener, far;
    uint8_t f[STREAM_FRAME_MAX], rec[SREC_MAX], rec2[SREC_MAX], out[SREC_MAX];
    const uint8_t *g, *sid;
    size_t flen, glen, len, len2;
    uint64_t sent = 0;
    bool open;

    make_keys();
    ck_assert_int_eq(srec_init(&opener, onion[1].pk, sid0, 1700000000123ull), 0);
    /* The open: the far end finds the key among its onion keys. */
    flen = make_frame(f, SF_OPEN, 100);
    len = srec_seal(&opener, SREC_FWD, rec, f, flen);
    ck_assert_uint_eq(len, SREC_OPEN_HDR + 8 + flen + OVL_AEAD_TAG);
    ck_assert_int_eq(srec_peek(rec, len, &sid, &open), 0);
    ck_assert(open);
    ck_assert_mem_eq(sid, sid0, STREAM_SID);
    ck_assert_int_eq(srec_accept(&far, rec, len, onion, 2, out, &g, &glen, &sent), 0);
    ck_assert_uint_eq(glen, flen);
    ck_assert_mem_eq(g, f, flen);
    ck_assert_uint_eq(sent, 1700000000000ull); /* whole seconds */
    /* Data both ways, each under its own key and counter. */
    flen = make_frame(f, SF_DATA, 300);
    len = srec_seal(&opener, SREC_FWD, rec, f, flen);
    len2 = srec_seal(&opener, SREC_FWD, rec2, f, flen);
    ck_assert_uint_eq(len, SREC_HDR + flen + OVL_AEAD_TAG);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(rec, rec2, len) != 0); /* a frame sent again: another counter */
    ck_assert_uint_eq(ld_le64(rec2 + 10), ld_le64(rec + 10) + 1);
    ck_assert_int_eq(srec_open(&far, SREC_FWD, rec2, len2, out, &g, &glen, NULL), 0);
    ck_assert_mem_eq(g, f, flen);
    ck_assert_int_eq(srec_open(&far, SREC_BACK, rec, len, out, &g, &glen, NULL), OVL_ECRYPTO);
    len = srec_seal(&far, SREC_BACK, rec, f, flen);
    ck_assert_uint_eq(ld_le64(rec + 10), 0);
    ck_assert_int_eq(srec_open(&opener, SREC_BACK, rec, len, out, &g, &glen, NULL), 0);
    ck_assert_mem_eq(g, f, flen);
    ck_assert_int_eq(srec_open(&opener, SREC_FWD, rec, len, out, &g, &glen, NULL), OVL_ECRYPTO);
    srec_wipe(&opener);
    srec_wipe(&far);
}
END_TEST

/* The largest frames fill a body's data exactly. */
START_TEST(mtu)
{
    struct srec r;
    uint8_t f[STREAM_FRAME_MAX], rec[SREC_MAX];
    size_t flen;

    make_keys();
    ck_assert_int_eq(srec_init(&r, onion[0].pk, sid0, 0), 0);
    flen = make_frame(f, SF_OPEN, SREC_FWD_MTU - STREAM_HDR - 3);
    ck_assert_uint_eq(flen, SREC_FWD_MTU);
    ck_assert_uint_eq(srec_seal(&r, SREC_FWD, rec, f, flen), SREC_MAX);
    flen = make_frame(f, SF_DATA, SREC_BACK_MTU - STREAM_HDR);
    ck_assert_uint_eq(srec_seal(&r, SREC_BACK, rec, f, flen), SREC_MAX);
    ck_assert_uint_le(SREC_FWD_MTU, STREAM_FRAME_MAX);
    ck_assert_uint_le(SREC_BACK_MTU, STREAM_FRAME_MAX);
}
END_TEST

/* Every changed byte, and every cut, is refused: nothing opens but what
 * was sealed. */
START_TEST(tampered)
{
    struct srec opener, far;
    uint8_t f[STREAM_FRAME_MAX], rec[SREC_MAX], bad[SREC_MAX], out[SREC_MAX];
    const uint8_t *g;
    size_t flen, glen, len;

    make_keys();
    ck_assert_int_eq(srec_init(&opener, onion[1].pk, sid0, 5000), 0);
    flen = make_frame(f, SF_OPEN, 40);
    len = srec_seal(&opener, SREC_FWD, rec, f, flen);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, rec, len);
        bad[i] ^= 0x20;
        ck_assert_int_ne(srec_accept(&far, bad, len, onion, 2, out, &g, &glen, NULL), 0);
    }
    for (size_t n = 0; n < len; n++)
        ck_assert_int_ne(srec_accept(&far, rec, n, onion, 2, out, &g, &glen, NULL), 0);
    /* Only the onion key it was sealed to opens it. */
    ck_assert_int_eq(srec_accept(&far, rec, len, onion, 1, out, &g, &glen, NULL), OVL_ECRYPTO);
    ck_assert_int_eq(srec_accept(&far, rec, len, onion, 2, out, &g, &glen, NULL), 0);
    /* A data record after it: changed bytes fail, and so do flags. */
    flen = make_frame(f, SF_DATA, 10);
    len = srec_seal(&opener, SREC_FWD, rec, f, flen);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, rec, len);
        bad[i] ^= 0x01;
        ck_assert_int_ne(srec_open(&far, SREC_FWD, bad, len, out, &g, &glen, NULL), 0);
    }
    /* An open flag on a record coming back, or any other flag: refused. */
    memcpy(bad, rec, len);
    bad[1] = SREC_F_OPEN;
    ck_assert_int_eq(srec_open(&opener, SREC_BACK, bad, len, out, &g, &glen, NULL), OVL_EPROTO);
    bad[1] = 0x80;
    ck_assert_int_eq(srec_open(&far, SREC_FWD, bad, len, out, &g, &glen, NULL), OVL_EPROTO);
    /* Not an open record: no keys are made from it. */
    ck_assert_int_eq(srec_accept(&far, rec, len, onion, 2, out, &g, &glen, NULL), OVL_EPROTO);
    srec_wipe(&opener);
    srec_wipe(&far);
}
END_TEST

/* A low-order key, either side, makes no keys. */
START_TEST(low_order)
{
    struct srec r;
    uint8_t zero[OVL_X25519_LEN] = {0}, f[STREAM_FRAME_MAX], rec[SREC_MAX], out[SREC_MAX];
    const uint8_t *g;
    size_t flen, glen, len;

    make_keys();
    ck_assert_int_eq(srec_init(&r, zero, sid0, 0), OVL_ECRYPTO);
    ck_assert_int_eq(srec_init(&r, onion[0].pk, sid0, 0), 0);
    flen = make_frame(f, SF_OPEN, 0);
    len = srec_seal(&r, SREC_FWD, rec, f, flen);
    memset(rec + SREC_HDR, 0, OVL_X25519_LEN);
    ck_assert_int_eq(srec_accept(&r, rec, len, onion, 2, out, &g, &glen, NULL), OVL_ECRYPTO);
}
END_TEST

/* Opens are remembered for the replay window: a copy is known, a stale
 * one refused, and a full table refuses rather than forgets. */
START_TEST(seen)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    uint8_t id[CLIENT_MSG_ID] = {SREC_TYPE, 1};
    uint64_t now = 1700000000000ull;

    client_opts_defaults(&o);
    o.tombstones = 16;
    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(msg_rx_init(&rx, &o, &st), 0);
    ck_assert_int_eq(msg_rx_seen(&rx, id, now - 1000, now), 0);
    ck_assert_int_eq(msg_rx_seen(&rx, id, now - 1000, now + 5000), OVL_EEXIST);
    id[1] = 2;
    ck_assert_int_eq(msg_rx_seen(&rx, id, now - o.replay_window_ms - 1, now), OVL_ETIMEDOUT);
    ck_assert_int_eq(msg_rx_seen(&rx, id, now + o.replay_window_ms + 1, now), OVL_ETIMEDOUT);
    ck_assert_uint_eq(st.dropped_stale, 2);
    for (uint8_t i = 2; i < 17; i++) {
        id[1] = i;
        ck_assert_int_eq(msg_rx_seen(&rx, id, now, now), 0);
    }
    id[1] = 17;
    ck_assert_int_eq(msg_rx_seen(&rx, id, now, now), OVL_ENOMEM);
    ck_assert_uint_eq(st.refused_tombstones, 1);
    /* Once the first one's window is over it makes room: it is gone (a
     * copy of it is no copy any more, only short of room). */
    now += o.replay_window_ms;
    ck_assert_int_eq(msg_rx_seen(&rx, id, now, now), 0);
    id[1] = 1;
    ck_assert_int_eq(msg_rx_seen(&rx, id, now - 1000, now), OVL_ENOMEM);
    msg_rx_free(&rx);
}
END_TEST

static Suite *srec_suite(void)
{
    Suite *s = suite_create("srec");
    TCase *tc = tcase_create("srec");

    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, mtu);
    tcase_add_test(tc, tampered);
    tcase_add_test(tc, low_order);
    tcase_add_test(tc, seen);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(srec_suite)
