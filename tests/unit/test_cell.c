/* test_cell.c - cell encoding and sealed frames. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "lib/bytes.h"
#include "check_main.h"

static const enum ovl_aead_suite suites[] = {OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_AES256GCM};
#define N_SUITES (sizeof(suites) / sizeof(suites[0]))

/* Key an AEAD for suite, or return false (saying why) when it cannot run here. */
static bool key_suite(struct ovl_aead *a, enum ovl_aead_suite suite, uint8_t fill)
{
    uint8_t key[OVL_AEAD_KEY];

    if ((ovl_aead_available() & suite) == 0) {
        printf("skipping %s: not available on this CPU\n", ovl_aead_name(suite));
        return false;
    }
    memset(key, fill, sizeof(key));
    ck_assert_int_eq(ovl_aead_init(a, suite, key), 0);
    return true;
}

static void fill_cell(struct cell *c, uint32_t chain, uint8_t cmd, uint16_t len)
{
    memset(c, 0, sizeof(*c));
    c->chain_id = chain;
    c->cmd = cmd;
    c->len = len;
    for (uint16_t i = 0; i < len; i++)
        c->payload[i] = (uint8_t)(i * 7 + 1);
}

static const struct {
    uint32_t chain;
    uint8_t cmd;
    uint16_t len;
} roundtrip_cases[] = {
    {0, CELL_PADDING, 0},
    {0, CELL_HELLO, 0},
    {0, CELL_PING, 8},
    {7, CELL_CHAIN_FWD, OVL_CELL_PAYLOAD},
    {0x01020304u, CELL_DIR_REPLY, 500},
    {0xffffffffu, 255, 1},
    {42, CELL_CHAIN_BACK, OVL_CELL_PAYLOAD - 1},
};

START_TEST(test_roundtrip)
{
    struct cell in, out;
    uint8_t buf[OVL_CELL_LEN];

    fill_cell(&in, roundtrip_cases[_i].chain, roundtrip_cases[_i].cmd, roundtrip_cases[_i].len);
    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(cell_encode(buf, &in), 0);
    /* Header fields are big-endian and in the documented order. */
    ck_assert_uint_eq(ld_be32(buf), in.chain_id);
    ck_assert_uint_eq(buf[4], in.cmd);
    ck_assert_uint_eq(buf[5], 0);
    ck_assert_uint_eq(ld_be16(buf + 6), in.len);
    for (size_t i = OVL_CELL_HDR + in.len; i < OVL_CELL_LEN; i++)
        ck_assert_uint_eq(buf[i], 0);
    ck_assert_int_eq(cell_decode(&out, buf), 0);
    ck_assert_uint_eq(out.chain_id, in.chain_id);
    ck_assert_uint_eq(out.cmd, in.cmd);
    ck_assert_uint_eq(out.flags, 0);
    ck_assert_uint_eq(out.len, in.len);
    ck_assert_mem_eq(out.payload, in.payload, in.len);
}
END_TEST

START_TEST(test_encode_rejects)
{
    struct cell c;
    uint8_t buf[OVL_CELL_LEN];

    fill_cell(&c, 1, CELL_PING, 0);
    c.len = OVL_CELL_PAYLOAD + 1;
    ck_assert_int_eq(cell_encode(buf, &c), OVL_EINVAL);
    c.len = 0;
    c.flags = 1;
    ck_assert_int_eq(cell_encode(buf, &c), OVL_EINVAL);
}
END_TEST

/* Each case damages a valid encoded cell of 10 payload bytes: it writes len
 * into the header, then val at off (when off is non-zero). */
static const struct {
    const char *what;
    uint16_t len;
    size_t off;
    uint8_t val;
} bad_cells[] = {
    {"len 1017", OVL_CELL_PAYLOAD + 1, 0, 0},
    {"len 0xffff", 0xffff, 0, 0},
    {"flags 1", 10, 5, 0x01},
    {"flags 0x80", 10, 5, 0x80},
    {"tail first byte", 10, OVL_CELL_HDR + 10, 0x01},
    {"tail last byte", 10, OVL_CELL_LEN - 1, 0x80},
    {"len 0 with payload", 0, OVL_CELL_HDR, 0x01},
};

START_TEST(test_decode_rejects)
{
    struct cell c;
    uint8_t buf[OVL_CELL_LEN];

    fill_cell(&c, 9, CELL_PING, 10);
    ck_assert_int_eq(cell_encode(buf, &c), 0);
    st_be16(buf + 6, bad_cells[_i].len);
    if (bad_cells[_i].off != 0)
        buf[bad_cells[_i].off] = bad_cells[_i].val;
    memset(&c, 0x55, sizeof(c));
    ck_assert_msg(cell_decode(&c, buf) == OVL_EPROTO, "accepted: %s", bad_cells[_i].what);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_uint_eq(c.cmd, 0);
}
END_TEST

START_TEST(test_decode_max_len)
{
    struct cell c;
    uint8_t buf[OVL_CELL_LEN];

    memset(buf, 0xee, sizeof(buf));
    buf[5] = 0;
    st_be16(buf + 6, OVL_CELL_PAYLOAD);
    ck_assert_int_eq(cell_decode(&c, buf), 0);
    ck_assert_uint_eq(c.len, OVL_CELL_PAYLOAD);
    st_be16(buf + 6, OVL_CELL_PAYLOAD + 1);
    ck_assert_int_eq(cell_decode(&c, buf), OVL_EPROTO);
}
END_TEST

START_TEST(test_cmd_names)
{
    ck_assert_str_eq(cell_cmd_name(CELL_PADDING), "padding");
    ck_assert_str_eq(cell_cmd_name(CELL_HELLO), "hello");
    ck_assert_str_eq(cell_cmd_name(CELL_PING), "ping");
    ck_assert_str_eq(cell_cmd_name(CELL_PONG), "pong");
    ck_assert_str_eq(cell_cmd_name(CELL_CHAIN_FWD), "chain_fwd");
    ck_assert_str_eq(cell_cmd_name(CELL_DIR_REQUEST), "dir_request");
    ck_assert_str_eq(cell_cmd_name(4), "unknown");
    ck_assert_str_eq(cell_cmd_name(255), "unknown");
}
END_TEST

/* Seal a test cell with suite under key fill 0x11 at counter; false if skipped. */
static bool seal_test_frame(enum ovl_aead_suite suite, uint64_t counter, struct ovl_aead *a,
                            uint8_t cellbuf[OVL_CELL_LEN], uint8_t frame[FRAME_CELL_LEN])
{
    struct cell c;

    if (!key_suite(a, suite, 0x11))
        return false;
    fill_cell(&c, 3, CELL_CHAIN_FWD, 100);
    ck_assert_int_eq(cell_encode(cellbuf, &c), 0);
    ck_assert_int_eq(frame_seal(frame, a, counter, cellbuf), 0);
    return true;
}

START_TEST(test_frame_roundtrip)
{
    struct ovl_aead a;
    uint8_t cellbuf[OVL_CELL_LEN], back[OVL_CELL_LEN], frame[FRAME_CELL_LEN];
    uint64_t ctr = 0;

    if (!seal_test_frame(suites[_i], 0x0102030405060708ull, &a, cellbuf, frame))
        return;
    ck_assert_uint_eq(frame[0], FRAME_CELL);
    ck_assert_uint_eq(ld_le64(frame + 1), 0x0102030405060708ull);
    ck_assert_int_eq(frame_counter(frame, sizeof(frame), &ctr), 0);
    ck_assert_uint_eq(ctr, 0x0102030405060708ull);
    ck_assert_int_eq(frame_open(back, &a, frame, sizeof(frame)), 0);
    ck_assert_mem_eq(back, cellbuf, OVL_CELL_LEN);
    ovl_aead_wipe(&a);
}
END_TEST

/* A flipped bit anywhere must never yield the same cell at the same counter. */
START_TEST(test_frame_bitflips)
{
    struct ovl_aead a;
    uint8_t cellbuf[OVL_CELL_LEN], back[OVL_CELL_LEN], frame[FRAME_CELL_LEN];

    if (!seal_test_frame(suites[_i], 77, &a, cellbuf, frame))
        return;
    for (size_t pos = 0; pos < FRAME_CELL_LEN; pos++) {
        uint8_t mask = (uint8_t)(1u << (pos % 8));
        uint64_t ctr = 0;
        int rc;

        frame[pos] ^= mask;
        rc = frame_counter(frame, sizeof(frame), &ctr);
        ck_assert_msg(rc != 0 || ctr != 77 || frame_open(back, &a, frame, sizeof(frame)) != 0,
                      "flip at byte %zu accepted", pos);
        /* Even with the counter changed, the tag must fail (type and counter are AD). */
        rc = frame_open(back, &a, frame, sizeof(frame));
        ck_assert_msg(rc == (pos == 0 ? OVL_EPROTO : OVL_ECRYPTO), "byte %zu: rc %d", pos, rc);
        frame[pos] ^= mask;
    }
    ck_assert_int_eq(frame_open(back, &a, frame, sizeof(frame)), 0);
    ovl_aead_wipe(&a);
}
END_TEST

START_TEST(test_frame_wrong_counter)
{
    struct ovl_aead a;
    uint8_t cellbuf[OVL_CELL_LEN], back[OVL_CELL_LEN], frame[FRAME_CELL_LEN];
    uint64_t ctr = 0;

    if (!seal_test_frame(suites[_i], 5, &a, cellbuf, frame))
        return;
    st_le64(frame + 1, 6);
    ck_assert_int_eq(frame_counter(frame, sizeof(frame), &ctr), 0);
    ck_assert_uint_eq(ctr, 6);
    ck_assert_int_eq(frame_open(back, &a, frame, sizeof(frame)), OVL_ECRYPTO);
    ovl_aead_wipe(&a);
}
END_TEST

START_TEST(test_frame_wrong_key)
{
    struct ovl_aead a, other;
    uint8_t cellbuf[OVL_CELL_LEN], back[OVL_CELL_LEN], frame[FRAME_CELL_LEN];

    if (!seal_test_frame(suites[_i], 5, &a, cellbuf, frame))
        return;
    ck_assert(key_suite(&other, suites[_i], 0x12));
    ck_assert_int_eq(frame_open(back, &other, frame, sizeof(frame)), OVL_ECRYPTO);
    ovl_aead_wipe(&a);
    ovl_aead_wipe(&other);
}
END_TEST

START_TEST(test_frame_wrong_length)
{
    struct ovl_aead a;
    uint8_t cellbuf[OVL_CELL_LEN], back[OVL_CELL_LEN], frame[FRAME_CELL_LEN + 1];
    uint64_t ctr = 99;
    const size_t lens[] = {0, 1, FRAME_CELL_AD, FRAME_CELL_LEN - 1, FRAME_CELL_LEN + 1};

    if (!seal_test_frame(OVL_AEAD_CHACHA20POLY1305, 5, &a, cellbuf, frame))
        return;
    frame[FRAME_CELL_LEN] = 0;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        ck_assert_int_eq(frame_counter(frame, lens[i], &ctr), OVL_EPROTO);
        ck_assert_int_eq(frame_open(back, &a, frame, lens[i]), OVL_EPROTO);
    }
    ck_assert_int_eq(frame_counter(NULL, FRAME_CELL_LEN, &ctr), OVL_EPROTO);
    frame[0] = FRAME_HS_INIT;
    ck_assert_int_eq(frame_counter(frame, FRAME_CELL_LEN, &ctr), OVL_EPROTO);
    ovl_aead_wipe(&a);
}
END_TEST

static Suite *cell_suite(void)
{
    Suite *s = suite_create("cell");
    TCase *tc = tcase_create("cell");

    tcase_add_loop_test(tc, test_roundtrip, 0,
                        sizeof(roundtrip_cases) / sizeof(roundtrip_cases[0]));
    tcase_add_test(tc, test_encode_rejects);
    tcase_add_loop_test(tc, test_decode_rejects, 0, sizeof(bad_cells) / sizeof(bad_cells[0]));
    tcase_add_test(tc, test_decode_max_len);
    tcase_add_test(tc, test_cmd_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("frame");
    tcase_add_loop_test(tc, test_frame_roundtrip, 0, N_SUITES);
    tcase_add_loop_test(tc, test_frame_bitflips, 0, N_SUITES);
    tcase_add_loop_test(tc, test_frame_wrong_counter, 0, N_SUITES);
    tcase_add_loop_test(tc, test_frame_wrong_key, 0, N_SUITES);
    tcase_add_test(tc, test_frame_wrong_length);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(cell_suite)
