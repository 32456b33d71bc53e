/* fuzz_cell.c - cells, sealed FRAME_CELL frames and the unsealed
 * FRAME_CELL_BOUND frames of bound links (src/core/cell.h).
 *
 * Input: mode(1), then
 *   mode bit 0 clear (raw): the rest is a frame as a peer would send it;
 *     frame_counter and frame_open (fixed key) read it, frame_bound_cell
 *     reads it as a bound link does (its cell to cell_decode), and its
 *     first OVL_CELL_LEN bytes (zero-padded) go to cell_decode;
 *   mode bit 0 set (sealed): counter(8) | flip_at(2) | flip_xor(1) | cell
 *     bytes (zero-padded to OVL_CELL_LEN); the harness seals them under
 *     the fixed key, changes one byte when flip_xor is not zero, and opens
 *     and decodes what arrives, as a link does.
 * mode bit 1 picks AES-256-GCM for the key when this machine has it.
 *
 * Properties: a decoded cell encodes back to exactly its bytes; a sealed
 * frame opens to exactly what was sealed, and one changed byte anywhere
 * makes it fail.
 */
#include <string.h>

#include "core/cell.h"
#include "fuzz.h"

static struct ovl_aead keys[2]; /* [0] ChaCha20-Poly1305, [1] AES-256-GCM or ChaCha again */

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    static const uint8_t ping[] = {0, 0, 0, 0, CELL_PING, 0, 0, 0};
    static const uint8_t setup[] = {0, 0, 0, 7, CELL_CHAIN_SETUP, 0, 0, 4, 1, 2, 3, 4};
    uint8_t cell[OVL_CELL_LEN] = {0}, frame[FRAME_CELL_LEN];

    /* A sealed ping, as the raw bytes a peer sends. */
    memcpy(cell, ping, sizeof(ping));
    if (frame_seal(frame, &keys[0], 5, cell) != 0)
        abort();
    s.len = 0;
    seed_u8(&s, 0);
    seed_put(&s, frame, sizeof(frame));
    fuzz_write_seed(dir, "raw-ping-frame", s.buf, s.len);
    /* The same ping as a bound link sends it. */
    s.len = 0;
    seed_u8(&s, 0);
    seed_u8(&s, FRAME_CELL_BOUND);
    seed_put(&s, cell, sizeof(cell));
    fuzz_write_seed(dir, "raw-bound-ping-frame", s.buf, s.len);
    /* A chain setup cell to seal, intact and with one byte changed. */
    s.len = 0;
    seed_u8(&s, 1);
    seed_u64(&s, 1);
    seed_u16(&s, 0);
    seed_u8(&s, 0);
    seed_put(&s, setup, sizeof(setup));
    fuzz_write_seed(dir, "sealed-setup", s.buf, s.len);
    s.buf[1 + 8] = 100; /* flip_at */
    s.buf[1 + 8 + 2] = 0x40;
    fuzz_write_seed(dir, "sealed-setup-flipped", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t k[OVL_AEAD_KEY];
    enum ovl_aead_suite aes = (ovl_aead_available() & OVL_AEAD_AES256GCM)
                                  ? OVL_AEAD_AES256GCM
                                  : OVL_AEAD_CHACHA20POLY1305;

    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_key(k, "cell frame key", 0);
    if (ovl_aead_init(&keys[0], OVL_AEAD_CHACHA20POLY1305, k) != 0 ||
        ovl_aead_init(&keys[1], aes, k) != 0)
        abort();
    fuzz_seeds(seeds);
    return 0;
}

/* Decode len bytes as a cell; a cell that decodes must encode back. */
static void check_cell(const uint8_t in[OVL_CELL_LEN])
{
    struct cell c;
    uint8_t out[OVL_CELL_LEN];

    if (cell_decode(&c, in) != 0)
        return;
    FUZZ_ASSERT(c.len <= OVL_CELL_PAYLOAD && c.flags == 0);
    FUZZ_ASSERT(cell_cmd_name(c.cmd) != NULL);
    FUZZ_ASSERT(cell_encode(out, &c) == 0);
    FUZZ_ASSERT(memcmp(out, in, OVL_CELL_LEN) == 0);
}

static void raw(struct fuzz_in *in, const struct ovl_aead *key)
{
    uint8_t cell[OVL_CELL_LEN];
    const uint8_t *bound;
    uint64_t ctr;
    /* An exact-size copy, so that ASan sees any read past the frame. */
    uint8_t *frame = malloc(in->n ? in->n : 1);
    size_t len = in->n;

    if (!frame)
        return;
    fz_bytes(in, frame, len);
    if (frame_counter(frame, len, &ctr) == 0)
        FUZZ_ASSERT(len == FRAME_CELL_LEN && frame[0] == FRAME_CELL);
    if (frame_open(cell, key, frame, len) == 0)
        check_cell(cell);
    if ((bound = frame_bound_cell(frame, len)) != NULL) {
        FUZZ_ASSERT(len == FRAME_BOUND_LEN && frame[0] == FRAME_CELL_BOUND && bound == frame + 1);
        check_cell(bound);
    }
    memset(cell, 0, sizeof(cell));
    memcpy(cell, frame, len < OVL_CELL_LEN ? len : OVL_CELL_LEN);
    check_cell(cell);
    free(frame);
}

static void sealed(struct fuzz_in *in, const struct ovl_aead *key)
{
    uint8_t cell[OVL_CELL_LEN], got[OVL_CELL_LEN], frame[FRAME_CELL_LEN];
    uint64_t ctr = fz_u64(in), seen;
    size_t at = fz_u16(in) % FRAME_CELL_LEN;
    uint8_t flip = fz_u8(in);
    int rc;

    fz_bytes(in, cell, sizeof(cell));
    FUZZ_ASSERT(frame_seal(frame, key, ctr, cell) == 0);
    frame[at] ^= flip;
    rc = frame_counter(frame, sizeof(frame), &seen);
    FUZZ_ASSERT(rc == 0 || (flip && at == 0));
    if (rc == 0)
        FUZZ_ASSERT(seen == ctr || (flip && at >= 1 && at < FRAME_CELL_AD));
    rc = frame_open(got, key, frame, sizeof(frame));
    FUZZ_ASSERT((rc == 0) == (flip == 0));
    if (rc != 0)
        return;
    FUZZ_ASSERT(memcmp(got, cell, sizeof(cell)) == 0);
    check_cell(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode;

    fuzz_begin();
    mode = fz_u8(&in);
    if (mode & 1)
        sealed(&in, &keys[(mode >> 1) & 1]);
    else
        raw(&in, &keys[(mode >> 1) & 1]);
    return 0;
}
