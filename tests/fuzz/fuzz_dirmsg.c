/* fuzz_dirmsg.c - directory messages over cells (src/dir/dirmsg.h).
 *
 * One reassembler (as a link has per direction) takes a stream of cells.
 * Input: max_len(4), then records until the input ends, each op(1) and by
 * op % 3:
 *   0: a cell as a peer sends it: chain_id(1: zero or not) | len(2) |
 *      payload (min(len, OVL_CELL_PAYLOAD) bytes); len may be anything;
 *   1: a whole message: req_id(4) | size(2) | pattern
 *      length(1) | pattern; size + 1 bytes, or (size + 1) x 5 when op / 3
 *      is odd (past DIRMSG_MAX_LEN at the top); dirmsg_fragment cuts it
 *      and every fragment goes to the shared reassembler and to a fresh one;
 *   2: dirmsg_fragment with arbitrary arguments: len(4) | index(2).
 *
 * Properties: a complete message never exceeds max_len (capped at
 * DIRMSG_MAX_LEN) and neither does the buffer; the fresh reassembler gives
 * back exactly the message that was cut, from its last fragment only;
 * dirmsg_fragment refuses exactly what its contract says.
 */
#include <string.h>

#include "dir/dirmsg.h"
#include "fuzz.h"
#include "lib/bytes.h"

#define MSG_SIZE_MAX (0x10000 * 5) /* 327,680 bytes: past DIRMSG_MAX_LEN */

static uint8_t *big; /* MSG_SIZE_MAX bytes for messages */

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    struct cell c;
    uint16_t count;
    static const uint8_t msg[] = {3 /* DIR_LIST */};

    /* A one-fragment request as raw cell, then a 3-fragment message. */
    if (dirmsg_fragment(&c, CELL_DIR_REQUEST, 7, msg, sizeof(msg), 0, &count) != 0)
        abort();
    s.len = 0;
    seed_u32(&s, DIRMSG_MAX_LEN);
    seed_u8(&s, 0);
    seed_u8(&s, 0);
    seed_u16(&s, c.len);
    seed_put(&s, c.payload, c.len);
    seed_u8(&s, 1);
    seed_u32(&s, 9);
    seed_u16(&s, 2500); /* 2501 bytes: 3 fragments */
    seed_u8(&s, 3);
    seed_put(&s, "abc", 3);
    fuzz_write_seed(dir, "request-then-3-fragments", s.buf, s.len);
    /* A message larger than a small max_len, and fragment's edge cases. */
    s.len = 0;
    seed_u32(&s, 4096);
    seed_u8(&s, 4); /* large */
    seed_u32(&s, 1);
    seed_u16(&s, 1000); /* 5005 bytes */
    seed_u8(&s, 1);
    seed_u8(&s, 0x55);
    seed_u8(&s, 2);
    seed_u32(&s, DIRMSG_MAX_LEN);
    seed_u16(&s, DIRMSG_MAX_FRAGS - 1);
    fuzz_write_seed(dir, "too-big-and-edges", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_seeds(seeds);
    big = malloc(MSG_SIZE_MAX);
    if (!big)
        abort();
    return 0;
}

/* Feed c to rx and check what came out against the caps. */
static int feed(struct dirmsg_rx *rx, const struct cell *c, size_t max_len, const uint8_t **msg,
                size_t *len)
{
    size_t cap = max_len < DIRMSG_MAX_LEN ? max_len : DIRMSG_MAX_LEN;
    uint32_t rid;
    int rc = dirmsg_rx_feed(rx, c, max_len, &rid, msg, len);

    FUZZ_ASSERT(rc == 0 || rc == 1 || rc == OVL_EPROTO || rc == OVL_ETOOBIG);
    FUZZ_ASSERT(rx->len <= rx->cap && rx->cap <= cap);
    if (rc == 1) {
        FUZZ_ASSERT(*msg != NULL && *len >= 1 && *len <= cap);
        FUZZ_ASSERT(c->len >= DIRMSG_FRAG_HDR && rid == ld_le32(c->payload));
    } else {
        FUZZ_ASSERT(*msg == NULL && *len == 0);
    }
    return rc;
}

static void raw_cell(struct fuzz_in *in, struct dirmsg_rx *rx, size_t max_len)
{
    struct cell c;
    const uint8_t *msg;
    size_t len;

    memset(&c, 0, sizeof(c));
    c.cmd = CELL_DIR_REQUEST;
    c.chain_id = fz_u8(in) & 1;
    c.len = fz_u16(in);
    fz_bytes(in, c.payload, c.len < OVL_CELL_PAYLOAD ? c.len : OVL_CELL_PAYLOAD);
    (void)feed(rx, &c, max_len, &msg, &len);
}

static void whole(struct fuzz_in *in, struct dirmsg_rx *rx, size_t max_len, bool large)
{
    uint32_t rid = fz_u32(in);
    size_t size = ((size_t)fz_u16(in) + 1) * (large ? 5 : 1);
    size_t plen = fz_u8(in);
    const uint8_t *pat;
    struct dirmsg_rx fresh = {0};
    uint16_t count = 0, want;
    struct cell c;
    int rc;

    plen = fz_take(in, &pat, plen);
    /* The pattern repeated, by doubling copies (cheap at any size). */
    if (plen == 0) {
        memset(big, 0x5a, size);
    } else {
        size_t have = plen < size ? plen : size;

        memcpy(big, pat, have);
        while (have < size) {
            size_t k = have < size - have ? have : size - have;

            memcpy(big + have, big, k);
            have += k;
        }
    }
    want = (uint16_t)((size + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA);
    for (uint16_t i = 0;; i++) {
        const uint8_t *msg;
        size_t len;
        uint8_t wire[OVL_CELL_LEN];

        rc = dirmsg_fragment(&c, CELL_DIR_REPLY, rid, big, size, i, &count);
        if (size > DIRMSG_MAX_LEN) {
            FUZZ_ASSERT(rc == OVL_ETOOBIG);
            break;
        }
        FUZZ_ASSERT(rc == 0 && count == want && cell_encode(wire, &c) == 0);
        (void)feed(rx, &c, max_len, &msg, &len);
        rc = feed(&fresh, &c, DIRMSG_MAX_LEN, &msg, &len);
        if (i + 1 < count) {
            FUZZ_ASSERT(rc == 0);
            continue;
        }
        FUZZ_ASSERT(rc == 1 && len == size && memcmp(msg, big, size) == 0);
        break;
    }
    dirmsg_rx_free(&fresh);
}

static void fragment_args(struct fuzz_in *in)
{
    size_t len = fz_u32(in) % (MSG_SIZE_MAX + 1);
    uint16_t index = fz_u16(in), count = 1;
    size_t n = (len + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA;
    struct cell c;
    int rc;

    rc = dirmsg_fragment(&c, CELL_DIR_REQUEST, 1, big, len, index, &count);
    if (len == 0)
        FUZZ_ASSERT(rc == OVL_EINVAL);
    else if (len > DIRMSG_MAX_LEN)
        FUZZ_ASSERT(rc == OVL_ETOOBIG);
    else if (index >= n)
        FUZZ_ASSERT(rc == OVL_EINVAL);
    else
        FUZZ_ASSERT(rc == 0 && count == n && c.len > DIRMSG_FRAG_HDR && c.len <= OVL_CELL_PAYLOAD);
    if (rc != 0)
        FUZZ_ASSERT(count == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct dirmsg_rx rx = {0};
    size_t max_len = fz_u32(&in) % (DIRMSG_MAX_LEN + 4096);

    fuzz_begin();
    while (in.n > 0) {
        uint8_t op = fz_u8(&in);

        switch (op % 3) {
        case 0:
            raw_cell(&in, &rx, max_len);
            break;
        case 1:
            whole(&in, &rx, max_len, (op / 3) & 1);
            break;
        default:
            fragment_args(&in);
            break;
        }
    }
    dirmsg_rx_free(&rx);
    return 0;
}
