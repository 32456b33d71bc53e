/* fuzz_stream.c - stream frames and targets (src/chain/stream.h).
 *
 * Input: byte 0 picks the end (bit 0: the opener, else the far end, taken
 * at once when bit 1 is set), then operations until the input ends:
 *   0: a frame: len(2) and that many bytes (at most STREAM_FRAME_MAX);
 *      with bit 7 of its flags byte set, its sid becomes the stream's own
 *      (an owner passes only frames of the stream's sid)
 *   1: the application writes n(2) bytes   2: it consumes n(2) bytes
 *   3: shutdown   4: rewind   5: pump   6: reset   7: the path refuses
 *      (OVL_EAGAIN) or takes frames, toggled
 * and the open args of byte-0-chosen length are a target for
 * stream_target_get.
 *
 * Properties, from stream.h: every frame the stream sends is at least
 * STREAM_HDR and at most its MTU bytes, of a known type, and never carries
 * data past the credit the peer gave; the rings never hold more than their
 * size, which never passes STREAM_WINDOW_RTT_MAX, nor STREAM_WINDOW_MAX for
 * the send ring of a stream without a pool (no round trips of its own
 * opened a window: the peer's credit alone grows it no further); nothing is acknowledged that was
 * not sent; once closed, a stream says nothing more; a target that stream_target_get accepts is put
 * back to the same bytes.
 */
#include <string.h>
#include <uv.h>

#include "chain/stream.h"
#include "fuzz.h"
#include "lib/bytes.h"

#define MTU 884

static uv_loop_t loop;
static bool refuse, closed;

static int f_send(struct stream *s, const uint8_t *f, size_t len)
{
    FUZZ_ASSERT(!closed);
    FUZZ_ASSERT(len >= STREAM_HDR && len <= MTU);
    FUZZ_ASSERT(f[0] >= SF_OPEN && f[0] <= SF_OPENED);
    FUZZ_ASSERT(memcmp(f + 2, s->sid, STREAM_SID) == 0);
    if (f[0] == SF_DATA || f[0] == SF_OPENED)
        FUZZ_ASSERT(len == STREAM_HDR || ld_le64(f + 10) + (len - STREAM_HDR) <= s->peer_lim);
    return refuse && f[0] != SF_RESET ? OVL_EAGAIN : 0;
}

static void f_event(struct stream *s, enum stream_event ev)
{
    FUZZ_ASSERT(!closed);
    if (ev == SE_CLOSED) {
        closed = true;
        stream_free(s);
    }
}

static const struct stream_ops ops = {f_send, f_event};

static const uint8_t sid0[STREAM_SID] = {1, 2, 3, 4, 5, 6, 7, 8};

static void seed_frame(struct fuzz_seed *sd, uint8_t type, uint8_t flags, uint64_t off,
                       uint64_t ack, uint64_t lim, const char *data)
{
    size_t n = strlen(data);

    seed_u8(sd, 0);
    seed_u16(sd, (uint16_t)(STREAM_HDR + n));
    seed_u8(sd, type);
    seed_u8(sd, flags);
    seed_put(sd, sid0, STREAM_SID);
    seed_u64(sd, off);
    seed_u64(sd, ack);
    seed_u64(sd, lim);
    seed_put(sd, data, n);
}

static void seeds(const char *dir)
{
    static struct fuzz_seed sd;

    /* The opener: opened, data, FIN, acks. */
    sd.len = 0;
    seed_u8(&sd, 1);
    seed_u8(&sd, 1);
    seed_u16(&sd, 3000);
    seed_frame(&sd, SF_OPENED, 0, 0, 884, 70000, "hello");
    seed_frame(&sd, SF_DATA, SF_FIN, 5, 3000, 70000, "!");
    seed_u8(&sd, 2);
    seed_u16(&sd, 6);
    seed_u8(&sd, 3);
    seed_frame(&sd, SF_DATA, 0, 7, 3001, 70000, "");
    fuzz_write_seed(dir, "opener", sd.buf, sd.len);
    /* The far end: an open with a target, a gap, a repeat, a reset. */
    sd.len = 0;
    seed_u8(&sd, 2);
    seed_frame(&sd, SF_OPEN, 0, 0, 0, 65536, "\x07\x01\x01\xbb\x7f\x00\x00\x01GET /");
    seed_frame(&sd, SF_DATA, SF_GAP, 900, 0, 65536, "late");
    seed_frame(&sd, SF_DATA, 0, 0, 0, 65536, "GE");
    seed_u8(&sd, 7);
    seed_u8(&sd, 1);
    seed_u16(&sd, 100);
    seed_u8(&sd, 4);
    seed_frame(&sd, SF_RESET, 0, 0, 0, 0, "\x04");
    fuzz_write_seed(dir, "far", sd.buf, sd.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    if (uv_loop_init(&loop) != 0)
        abort();
    fuzz_seeds(seeds);
    return 0;
}

static void check_target(const uint8_t *args, size_t alen)
{
    struct stream_target t;
    uint8_t out[4 + 255];

    if (stream_target_get(&t, args, alen) == 0) {
        FUZZ_ASSERT(stream_target_put(out, &t) == (int)alen);
        FUZZ_ASSERT(memcmp(out, args, alen) == 0);
    }
}

static void op(struct stream *s, struct fuzz_in *in, uint8_t code)
{
    uint8_t f[STREAM_FRAME_MAX], *w;
    const uint8_t *r;
    size_t n, k;

    switch (code % 8) {
    case 0:
        n = fz_u16(in) % (STREAM_FRAME_MAX + 1);
        fz_bytes(in, f, n);
        if (n >= STREAM_HDR && (f[1] & 0x80))
            memcpy(f + 2, s->sid, STREAM_SID);
        (void)stream_input(s, f, n);
        break;
    case 1:
        for (n = fz_u16(in); n && !closed && (k = stream_wbuf(s, &w)) > 0; n -= k) {
            k = k < n ? k : n;
            memset(w, 'x', k);
            stream_wrote(s, k);
        }
        break;
    case 2:
        n = fz_u16(in);
        k = stream_rbuf(s, &r);
        stream_consumed(s, n < k ? n : k);
        break;
    case 3:
        stream_shutdown(s);
        break;
    case 4:
        stream_rewind(s);
        break;
    case 5:
        stream_pump(s);
        break;
    case 6:
        stream_reset(s, (enum stream_reason)(fz_u8(in) % (SR_MAX + 1)));
        break;
    default:
        refuse = !refuse;
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct stream *s;
    uint8_t mode;

    fuzz_begin();
    refuse = closed = false;
    mode = fz_u8(&in);
    check_target(data, size < 300 ? size : 300);
    if (stream_new(&loop, &ops, NULL, sid0, mode & 1 ? (const uint8_t *)"\x07\x01\x00\x50" : NULL,
                   mode & 1 ? 4 : 0, MTU, 60000, &s) != 0)
        return 0;
    if ((mode & 3) == 2)
        stream_take(s);
    while (in.n && !closed) {
        op(s, &in, fz_u8(&in));
        if (closed)
            break;
        FUZZ_ASSERT(s->snd.len <= s->snd.cap && s->rcv.len <= s->rcv.cap);
        FUZZ_ASSERT(s->snd.cap <= STREAM_WINDOW_MAX && s->rcv.cap <= STREAM_WINDOW_RTT_MAX);
        FUZZ_ASSERT(s->una <= s->max && s->nxt <= s->max + 1);
        FUZZ_ASSERT(s->snd.base <= s->una || s->una + 1 >= s->snd.base);
    }
    if (!closed)
        stream_free(s);
    uv_run(&loop, UV_RUN_NOWAIT); /* the timer's close frees the stream */
    return 0;
}
