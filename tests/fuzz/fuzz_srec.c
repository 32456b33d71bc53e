/* fuzz_srec.c - stream records to services (src/client/srec.h).
 *
 * Input: byte 0 picks the mode.
 *   0: the rest is a record from the wire, given to srec_peek, to
 *      srec_accept with the fixed onion keys, and to srec_open both ways
 *      with a fixed stream's keys
 *   1: a frame: type(1), len(2) and that many bytes (at most the
 *      direction's MTU) is sealed by the fixed opener, forward or back
 *      (bit 0 of the type byte's high bits: back), then pos(2) and x(1):
 *      when x is not 0, byte pos % record length is xored with it before
 *      the far end opens the record (accepts it, for an open)
 *
 * Properties, from srec.h: a record that opens came out at most SREC_MAX
 * bytes and yields a frame of at least STREAM_HDR bytes naming the
 * record's sid; a sealed record is at most SREC_MAX bytes, opens with the
 * right keys to exactly the frame sealed, only in its own direction, and
 * one changed byte is always refused; an open record's time is the
 * opener's in whole seconds.
 */
#include <string.h>

#include "client/srec.h"
#include "fuzz.h"
#include "lib/bytes.h"

#define WALL_MS 1700000000999ull

static struct dir_onion onion[2];
static const uint8_t sid0[STREAM_SID] = {1, 2, 3, 4, 5, 6, 7, 8};

/* The fixed opener's keys to onion[1] (randomness rewound per input). */
static void opener(struct srec *r)
{
    FUZZ_ASSERT(srec_init(r, onion[1].pk, sid0, WALL_MS) == 0);
}

static void check_opened(const uint8_t *rec, const uint8_t *f, size_t flen)
{
    FUZZ_ASSERT(flen >= STREAM_HDR && flen <= SREC_MAX);
    FUZZ_ASSERT(memcmp(f + 2, rec + 2, STREAM_SID) == 0);
}

static void wire(struct fuzz_in *in)
{
    uint8_t rec[SREC_MAX + 8], out[SREC_MAX];
    const uint8_t *p, *sid, *f;
    struct srec r, far;
    size_t len = fz_take(in, &p, sizeof(rec)), flen;
    bool open;

    memcpy(rec, p, len);
    if (srec_peek(rec, len, &sid, &open) == 0)
        FUZZ_ASSERT(sid == rec + 2 && len <= SREC_MAX);
    if (srec_accept(&far, rec, len, onion, 2, out, &f, &flen, NULL) == 0)
        check_opened(rec, f, flen);
    opener(&r);
    for (int dir = SREC_FWD; dir <= SREC_BACK; dir++)
        if (srec_open(&r, (enum srec_dir)dir, rec, len, out, &f, &flen, NULL) == 0)
            check_opened(rec, f, flen);
    srec_wipe(&r);
}

static void sealed(struct fuzz_in *in)
{
    uint8_t frame[STREAM_FRAME_MAX], rec[SREC_MAX], out[SREC_MAX], type = fz_u8(in);
    enum srec_dir dir = (type & 0x80) ? SREC_BACK : SREC_FWD;
    size_t mtu = dir == SREC_BACK ? SREC_BACK_MTU : SREC_FWD_MTU;
    size_t len = STREAM_HDR + fz_u16(in) % (mtu - STREAM_HDR + 1), rlen, flen;
    struct srec r, far;
    const uint8_t *f;
    uint64_t sent = 0;
    uint16_t pos;
    uint8_t x;
    int rc;

    fz_bytes(in, frame, len);
    frame[0] = type & 0x7f;
    memcpy(frame + 2, sid0, STREAM_SID);
    pos = fz_u16(in);
    x = fz_u8(in);
    opener(&r);
    far = r;
    if (dir == SREC_BACK)
        far.ctr = 0;
    rlen = srec_seal(dir == SREC_BACK ? &far : &r, dir, rec, frame, len);
    FUZZ_ASSERT(rlen <= SREC_MAX);
    rec[pos % rlen] ^= x;
    if (dir == SREC_FWD && frame[0] == SF_OPEN)
        rc = srec_accept(&far, rec, rlen, onion, 2, out, &f, &flen, &sent);
    else
        rc = srec_open(dir == SREC_BACK ? &r : &far, dir, rec, rlen, out, &f, &flen, &sent);
    FUZZ_ASSERT((rc == 0) == (x == 0));
    if (rc == 0) {
        FUZZ_ASSERT(flen == len && memcmp(f, frame, len) == 0);
        FUZZ_ASSERT(sent == (rec[1] ? WALL_MS / 1000 * 1000 : 0));
        /* Never in the other direction. */
        FUZZ_ASSERT(srec_open(&r, dir == SREC_FWD ? SREC_BACK : SREC_FWD, rec, rlen, out, &f, &flen,
                              NULL) != 0);
    }
    srec_wipe(&r);
    srec_wipe(&far);
}

static void seed_frame(struct fuzz_seed *sd, uint8_t type, const char *data)
{
    size_t n = strlen(data);

    seed_u8(sd, 1);
    seed_u8(sd, type);
    seed_u16(sd, (uint16_t)n);
    seed_put(sd, "\0\0\0\0\0\0\0\0\0\0", 10); /* type, flags, sid: set by the harness */
    seed_put(sd, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
    seed_put(sd, data, n);
}

/* The seed corpus: opens sealed forward and back, one changed byte, and a
 * real open record as the wire brings it. */
static void seeds(const char *dir)
{
    static struct fuzz_seed sd;
    uint8_t f[STREAM_HDR + 8] = {SF_OPEN}, rec[SREC_MAX];
    struct srec r;
    size_t n;

    sd.len = 0;
    seed_frame(&sd, SF_OPEN, "\x02\x00\x50GET / HTTP/1.0\r\n\r\n");
    fuzz_write_seed(dir, "seal-open", sd.buf, sd.len);
    sd.len = 0;
    seed_frame(&sd, 0x80 | SF_DATA, "some bytes back");
    seed_u16(&sd, 30);
    seed_u8(&sd, 4);
    fuzz_write_seed(dir, "seal-back-changed", sd.buf, sd.len);
    opener(&r);
    memcpy(f + 2, sid0, STREAM_SID);
    f[STREAM_HDR] = 2;
    n = srec_seal(&r, SREC_FWD, rec, f, STREAM_HDR + 3);
    sd.len = 0;
    seed_u8(&sd, 0);
    seed_put(&sd, rec, n);
    fuzz_write_seed(dir, "wire-open", sd.buf, sd.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_x25519(onion[0].pk, onion[0].sk, 0);
    fuzz_x25519(onion[1].pk, onion[1].sk, 1);
    fuzz_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};

    fuzz_begin();
    if (fz_u8(&in) % 2 == 0)
        wire(&in);
    else
        sealed(&in);
    return 0;
}
