/* test_dirmsg.c - fragmenting directory messages and reassembling them. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dirmsg.h"
#include "lib/bytes.h"

#include "check_main.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t *pattern(size_t len, uint8_t salt)
{
    uint8_t *p = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + salt + (i >> 8));
    return p;
}

static const size_t sizes[] = {
    1, 1007, 1008, 1009, 2016, 5000, 100000, DIRMSG_MAX_LEN - 1, DIRMSG_MAX_LEN,
};

START_TEST(roundtrip)
{
    size_t len = sizes[_i];
    uint8_t *msg = pattern(len, (uint8_t)_i);
    uint16_t count = 0, want = (uint16_t)((len + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA);
    struct dirmsg_rx rx = {0};
    struct cell c;
    uint8_t wire[OVL_CELL_LEN];

    for (uint16_t i = 0;; i++) {
        uint32_t rid = 0;
        const uint8_t *out = NULL;
        size_t olen = 0;

        ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REPLY, 0xa1b2c3d4, msg, len, i, &count), 0);
        ck_assert_uint_eq(count, want);
        ck_assert_uint_eq(c.cmd, CELL_DIR_REPLY);
        ck_assert_uint_eq(c.chain_id, 0);
        size_t data = i + 1 < count ? DIRMSG_FRAG_DATA : len - (size_t)i * DIRMSG_FRAG_DATA;
        ck_assert_uint_eq(c.len, DIRMSG_FRAG_HDR + data);
        ck_assert_uint_eq(ld_le32(c.payload), 0xa1b2c3d4);
        ck_assert_int_eq(cell_encode(wire, &c), 0); /* a valid cell */

        int rc = dirmsg_rx_feed(&rx, &c, DIRMSG_MAX_LEN, &rid, &out, &olen);
        ck_assert_uint_eq(rid, 0xa1b2c3d4);
        /* grows with the data, never from the announced count */
        ck_assert_uint_le(rx.cap, 2 * ((size_t)(i + 1) * DIRMSG_FRAG_DATA) + 2048);
        if (i + 1 < count) {
            ck_assert_int_eq(rc, 0);
            ck_assert_ptr_null(out);
            continue;
        }
        ck_assert_int_eq(rc, 1);
        ck_assert_uint_eq(olen, len);
        ck_assert_int_eq(memcmp(out, msg, len), 0);
        break;
    }
    ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REPLY, 1, msg, len, count, &count), OVL_EINVAL);
    dirmsg_rx_free(&rx);
    ck_assert_ptr_null(rx.buf);
    dirmsg_rx_free(&rx);
    free(msg);
}
END_TEST

START_TEST(fragment_limits)
{
    struct cell c;
    uint16_t count = 9;
    uint8_t *msg = pattern(DIRMSG_MAX_LEN + 1, 0);

    ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, msg, 0, 0, &count), OVL_EINVAL);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, msg, DIRMSG_MAX_LEN + 1, 0, &count),
                     OVL_ETOOBIG);
    ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, msg, 10, 1, &count), OVL_EINVAL);
    ck_assert_int_eq(
        dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, msg, DIRMSG_MAX_LEN, DIRMSG_MAX_FRAGS, &count),
        OVL_EINVAL);
    ck_assert_int_eq(
        dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, msg, DIRMSG_MAX_LEN, DIRMSG_MAX_FRAGS - 1, &count),
        0);
    ck_assert_uint_eq(count, DIRMSG_MAX_FRAGS);
    free(msg);
}
END_TEST

/* One fragment as it would be put on the wire by a (possibly bad) peer. */
struct frag {
    uint32_t rid;
    int idx, cnt;   /* written as 16-bit fields */
    int dlen;       /* data bytes; -1: cell len 7 (shorter than the header) */
    uint32_t chain; /* chain_id */
};

static void make_frag(struct cell *c, const struct frag *f)
{
    memset(c, 0, sizeof(*c));
    c->cmd = CELL_DIR_REQUEST;
    c->chain_id = f->chain;
    st_le32(c->payload, f->rid);
    st_le16(c->payload + 4, (uint16_t)f->idx);
    st_le16(c->payload + 6, (uint16_t)f->cnt);
    c->len = f->dlen < 0 ? 7 : (uint16_t)(DIRMSG_FRAG_HDR + f->dlen);
    memset(c->payload + DIRMSG_FRAG_HDR, 0x42, f->dlen > 0 ? (size_t)f->dlen : 0);
}

#define F DIRMSG_FRAG_DATA
/* Sequences whose last fragment must fail with rc; all before it succeed. */
static const struct {
    const char *what;
    size_t max_len;
    int rc;
    unsigned n;
    struct frag f[3];
} bad_seqs[] = {
    {"out of order", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {7, 2, 3, F, 0}}},
    {"repeated index", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {7, 0, 3, F, 0}}},
    {"starts at 1", 1 << 20, OVL_EPROTO, 1, {{7, 1, 3, F, 0}}},
    {"req_id changes", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {8, 1, 3, F, 0}}},
    {"count changes", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {7, 1, 4, F, 0}}},
    {"count shrinks", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {7, 1, 1, 5, 0}}},
    {"index past count",
     1 << 20,
     OVL_EPROTO,
     3,
     {{7, 0, 3, F, 0}, {7, 1, 3, F, 0}, {7, 3, 3, 1, 0}}},
    {"index = count", 1 << 20, OVL_EPROTO, 1, {{7, 1, 1, 5, 0}}},
    {"count 0", 1 << 20, OVL_EPROTO, 1, {{7, 0, 0, 5, 0}}},
    {"count too big", 1 << 20, OVL_EPROTO, 1, {{7, 0, DIRMSG_MAX_FRAGS + 1, F, 0}}},
    {"short middle", 1 << 20, OVL_EPROTO, 2, {{7, 0, 3, F, 0}, {7, 1, 3, F - 1, 0}}},
    {"short first", 1 << 20, OVL_EPROTO, 1, {{7, 0, 2, 100, 0}}},
    {"empty fragment", 1 << 20, OVL_EPROTO, 1, {{7, 0, 1, 0, 0}}},
    {"len < header", 1 << 20, OVL_EPROTO, 1, {{7, 0, 1, -1, 0}}},
    {"len < header mid", 1 << 20, OVL_EPROTO, 2, {{7, 0, 2, F, 0}, {7, 1, 2, -1, 0}}},
    {"chain_id set", 1 << 20, OVL_EPROTO, 1, {{7, 0, 1, 5, 9}}},
    {"count over max_len", 2000, OVL_ETOOBIG, 1, {{7, 0, 3, F, 0}}},
    {"data over max_len",
     2020,
     OVL_ETOOBIG,
     3,
     {{7, 0, 3, F, 0}, {7, 1, 3, F, 0}, {7, 2, 3, 5, 0}}},
    {"single over max_len", 10, OVL_ETOOBIG, 1, {{7, 0, 1, 11, 0}}},
};
#undef F

START_TEST(bad_sequence)
{
    struct dirmsg_rx rx = {0};
    struct cell c;
    const uint8_t *out;
    size_t olen;
    uint32_t rid;
    int rc = 0;

    for (unsigned i = 0; i < bad_seqs[_i].n; i++) {
        make_frag(&c, &bad_seqs[_i].f[i]);
        rc = dirmsg_rx_feed(&rx, &c, bad_seqs[_i].max_len, &rid, &out, &olen);
        if (i + 1 < bad_seqs[_i].n)
            ck_assert_msg(rc == 0, "%s: fragment %u: %d", bad_seqs[_i].what, i, rc);
    }
    ck_assert_msg(rc == bad_seqs[_i].rc, "%s: %d", bad_seqs[_i].what, rc);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(olen, 0);
    /* rx was reset: a fresh, good message goes through */
    ck_assert_uint_eq(rx.next, 0);
    ck_assert_uint_eq(rx.len, 0);
    const struct frag good = {99, 0, 1, 9, 0};
    make_frag(&c, &good);
    ck_assert_int_eq(dirmsg_rx_feed(&rx, &c, 1 << 20, &rid, &out, &olen), 1);
    ck_assert_uint_eq(rid, 99);
    ck_assert_uint_eq(olen, 9);
    dirmsg_rx_free(&rx);
}
END_TEST

/* Back-to-back messages on one rx; the previous one is released by the next
 * call. */
START_TEST(consecutive)
{
    struct dirmsg_rx rx = {0};
    struct cell c;
    const uint8_t *out;
    size_t olen;
    uint32_t rid;
    uint16_t count;
    uint8_t *big = pattern(30000, 1), small[3] = {DIR_HEARTBEAT, 1, 2};

    for (int round = 0; round < 3; round++) {
        for (uint16_t i = 0; i < 30; i++) {
            ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REPLY, 5, big, 30000, i, &count), 0);
            int rc = dirmsg_rx_feed(&rx, &c, DIRMSG_MAX_LEN, &rid, &out, &olen);
            ck_assert_int_eq(rc, i + 1 == count ? 1 : 0);
        }
        ck_assert_uint_eq(olen, 30000);
        ck_assert_int_eq(memcmp(out, big, olen), 0);
        ck_assert_int_eq(dirmsg_fragment(&c, CELL_DIR_REPLY, 6, small, 3, 0, &count), 0);
        ck_assert_uint_eq(count, 1);
        ck_assert_int_eq(dirmsg_rx_feed(&rx, &c, DIRMSG_MAX_LEN, &rid, &out, &olen), 1);
        ck_assert_uint_eq(rid, 6);
        ck_assert_uint_eq(olen, 3);
        ck_assert_int_eq(memcmp(out, small, 3), 0);
        ck_assert_uint_le(rx.cap, 16 * 1024); /* a big buffer is not kept */
    }
    dirmsg_rx_free(&rx);
    dirmsg_rx_free(NULL);
    free(big);
}
END_TEST

/* Request IDs: one after the other, never 0, also where the counter wraps. */
START_TEST(next_id)
{
    uint32_t last = UINT32_MAX - 1;

    ck_assert_uint_eq(dirmsg_next_id(&last), UINT32_MAX);
    ck_assert_uint_eq(dirmsg_next_id(&last), 1);
    ck_assert_uint_eq(last, 1);
    ck_assert_uint_eq(dirmsg_next_id(&last), 2);
    last = 0;
    ck_assert_uint_eq(dirmsg_next_id(&last), 1);
}
END_TEST

static Suite *dirmsg_suite(void)
{
    Suite *s = suite_create("dirmsg");
    TCase *tc = tcase_create("dirmsg");
    tcase_add_loop_test(tc, roundtrip, 0, (int)ARRAY_LEN(sizes));
    tcase_add_test(tc, fragment_limits);
    tcase_add_loop_test(tc, bad_sequence, 0, (int)ARRAY_LEN(bad_seqs));
    tcase_add_test(tc, consecutive);
    tcase_add_test(tc, next_id);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(dirmsg_suite)
