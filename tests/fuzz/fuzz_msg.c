/* fuzz_msg.c - end-to-end message fragments and their reassembly
 * (src/client/msg.h: msg_rx_fragment, msg_open and the reply parser
 * through it, msg_reply_seal, msg_rx_sent, msg_rx_expire, msg_rx_recv).
 *
 * One receiver with small caps takes a stream of operations.
 * Input: inbox_messages(1) | max_message(2) | inbox_bytes(2, x 4) |
 * reassembly_timeout(1, x 10 ms), then records until the input ends, each
 * op(1) and by op % 7:
 *   0: a fragment as received: len(2) | bytes;
 *   1: a real message: id(1, expanded to 16 bytes so that IDs collide) |
 *      key(1: current, previous or a foreign onion key) | reply(1) |
 *      size(2) | pattern length(1) | pattern | order(1) | sent ago(2, x 16
 *      ms: inside or outside the 10-minute replay window) | which(1); it is
 *      sealed with msg_seal and its fragments are fed in order, backwards,
 *      each twice, or with fragment `which` left out;
 *   2: time passes: ms(2), then msg_rx_expire;
 *   3: the inbox is read: max(1);
 *   4: the next fragments come from link(1) % 3 and delivery chain(1) % 3,
 *      as replies back on our chain (from.reply) when link has bit 7 set;
 *   5: a fragment header on a message's grid: id(1) | offset(4) |
 *      total(4) | data length(2), data zero;
 *   6: a real reply: id(1) | known(1) | size(2) | order(1) | cut(1); a
 *      one-byte message id is delivered to a second node, which answers it
 *      with size bytes; we kept the key of the replies to id when known is
 *      odd; its fragments come in order, backwards or each twice, and with
 *      cut odd fragment (cut >> 1) % n is given 1 + (cut >> 4) bytes short.
 *
 * Properties: the caps hold after every step (messages being reassembled
 * and junk markers at most inbox_messages, tombstones and kept keys of
 * replies each at most tombstones, the inbox at most inbox_messages; their
 * bytes within inbox_bytes); a message completed from a real message's
 * fragments is acknowledged with the tag its sender derived; a reply
 * completes only when its key was kept, and then enters the inbox whole,
 * marked as the reply to id; what the inbox returns is at most
 * max_message bytes.
 */
#include <string.h>

#include "client/msg.h"
#include "fuzz.h"

#define N_KEYS 3 /* the receiver knows the first two */

static struct dir_onion keys[N_KEYS];

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    static const uint8_t caps[] = {4, 0x00, 0x10, 0x00, 0x40, 100};

    /* Two real messages (one of 3 fragments, backwards), a read. */
    s.len = 0;
    seed_put(&s, caps, sizeof(caps));
    seed_put(&s, (const uint8_t[]){1, 7, 0, 1, 0x00, 0x08, 2, 'h', 'i', 1, 0}, 11);
    seed_put(&s, (const uint8_t[]){1, 8, 1, 0, 5, 0, 1, 'x', 0, 0}, 10);
    seed_put(&s, (const uint8_t[]){3, 4}, 2);
    fuzz_write_seed(dir, "two-messages-and-read", s.buf, s.len);
    /* Duplicates, a gap that times out, a foreign key. */
    s.len = 0;
    seed_put(&s, caps, sizeof(caps));
    seed_put(&s, (const uint8_t[]){1, 9, 0, 0, 0x00, 0x06, 1, 'a', 2, 0}, 10);
    seed_put(&s, (const uint8_t[]){1, 10, 0, 0, 0x00, 0x06, 1, 'b', 3, 1}, 10);
    seed_put(&s, (const uint8_t[]){2, 0xff, 0x0f}, 3);
    seed_put(&s, (const uint8_t[]){1, 11, 2, 0, 40, 0, 1, 'c', 0, 0}, 10);
    fuzz_write_seed(dir, "duplicates-gap-foreign", s.buf, s.len);
    /* Raw and grid fragments. */
    s.len = 0;
    seed_put(&s, caps, sizeof(caps));
    seed_put(&s, (const uint8_t[]){4, 12, 0x3c, 3, 0, 0, 0x00, 0x08, 0, 0, 0x3c, 3}, 12);
    seed_put(&s, (const uint8_t[]){0, 30, 0}, 3);
    seed_put(&s, "0123456789abcdef\x00\x00\x00\x00\x31\x00\x00\x00zzzzzz", 30);
    fuzz_write_seed(dir, "grid-and-raw", s.buf, s.len);
    /* A reply of 3 fragments read, one to a key not kept, one cut
     * short, raw fragments as replies. */
    s.len = 0;
    seed_put(&s, caps, sizeof(caps));
    seed_put(&s, (const uint8_t[]){6, 1, 1, 0x00, 0x08, 1, 0}, 7);
    seed_put(&s, (const uint8_t[]){6, 2, 0, 0x00, 0x01, 0, 0}, 7);
    seed_put(&s, (const uint8_t[]){6, 3, 1, 0x00, 0x04, 2, 0x13}, 7);
    seed_put(&s, (const uint8_t[]){4, 0x80, 0, 0, 40, 0}, 6);
    seed_put(&s, "\x02z3456789abcdef\x00\x00\x00\x00\x28\x00\x00\x00", 24);
    seed_put(&s, "0123456789abcdef", 16);
    fuzz_write_seed(dir, "replies", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    for (unsigned i = 0; i < N_KEYS; i++) {
        memset(&keys[i], 0, sizeof(keys[i]));
        fuzz_x25519(keys[i].pk, keys[i].sk, 50 + i);
    }
    fuzz_seeds(seeds);
    return 0;
}

struct rx_state {
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct msg_rx dest; /* the node that answers (op 6) */
    uint64_t now;
    uint8_t link, chain; /* where the next fragments come from */
    bool reply;          /* ... and whether as replies */
};

#define WALL0 1700000000000ull /* the receiver's wall clock at now 0 */

/* The caps the receiver promises. */
static void check_caps(const struct rx_state *r)
{
    const struct msg_rx *rx = &r->rx;

    FUZZ_ASSERT(rx->count[MSG_LIVE] <= rx->inbox_max && rx->count[MSG_JUNK] <= rx->inbox_max);
    FUZZ_ASSERT(rx->count[MSG_DONE] <= rx->tomb_max && rx->count[MSG_SENT] <= rx->tomb_max);
    FUZZ_ASSERT(rx->in_count <= rx->inbox_max);
    FUZZ_ASSERT(rx->part_bytes + rx->in_bytes <= rx->inbox_bytes_max);
}

static enum msg_rx_result give(struct rx_state *r, const uint8_t *f, size_t len, uint8_t *ack)
{
    struct msg_from from = {.link = 1 + r->link,
                            .chain = 1 + r->chain,
                            .now_ms = r->now,
                            .wall_ms = WALL0 + r->now,
                            .reply = r->reply};
    enum msg_rx_result res = msg_rx_fragment(&r->rx, &from, f, len, keys, 2, ack);

    FUZZ_ASSERT(res <= MSG_RX_DROPPED);
    check_caps(r);
    return res;
}

static void raw(struct rx_state *r, struct fuzz_in *in)
{
    size_t len = fz_u16(in) % (MSG_FRAG_MAX + 16);
    uint8_t ack[MSG_ACK_LEN];
    uint8_t *f = malloc(len ? len : 1); /* exact size: ASan sees overreads */

    if (!f)
        return;
    fz_bytes(in, f, len);
    (void)give(r, f, len, ack);
    free(f);
}

static void grid(struct rx_state *r, struct fuzz_in *in)
{
    uint8_t f[MSG_FRAG_MAX] = {0}, ack[MSG_ACK_LEN];
    size_t len;

    f[0] = fz_u8(in);
    fz_bytes(in, f + CLIENT_MSG_ID, 8); /* offset, total */
    len = MSG_FRAG_HDR + fz_u16(in) % (MSG_FRAG_MAX - MSG_FRAG_HDR + 1);
    (void)give(r, f, len, ack);
}

static void real(struct rx_state *r, struct fuzz_in *in)
{
    uint8_t id[CLIENT_MSG_ID] = {0}, reply[OVL_ED25519_PK], tag[MSG_ACK_TAG];
    uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];
    unsigned key;
    bool with_reply;
    size_t size, plen, blob_len, nf, order, skip;
    uint64_t sent_ago;
    const uint8_t *pat;
    uint8_t *m, *blob;

    id[0] = fz_u8(in);
    key = fz_u8(in) % N_KEYS;
    with_reply = fz_u8(in) & 1;
    size = fz_u16(in) % (r->o.max_message + 64) + 1;
    plen = fz_u8(in);
    plen = fz_take(in, &pat, plen);
    order = fz_u8(in) % 4;
    sent_ago = (uint64_t)fz_u16(in) * 16; /* up to ~17 min: the window is 10 */
    if (sent_ago > WALL0)
        sent_ago = 0;
    m = malloc(size);
    if (!m)
        return;
    for (size_t i = 0; i < size; i++)
        m[i] = plen ? pat[i % plen] : (uint8_t)i;
    memset(reply, 0xab, sizeof(reply));
    FUZZ_ASSERT(msg_seal(&blob, &blob_len, keys[key].pk, id, with_reply ? reply : NULL, m, size,
                         WALL0 + r->now - sent_ago, tag, NULL) == 0);
    nf = msg_frag_count(blob_len);
    skip = fz_u8(in) % nf;
    for (size_t k = 0; k < (order == 2 ? 2 * nf : nf); k++) {
        size_t i = order == 1 ? nf - 1 - k : order == 2 ? k / 2 : k;
        size_t len;

        if (order == 3 && i == skip)
            continue;
        len = msg_frag_build(f, id, blob, blob_len, i);
        if (give(r, f, len, ack) == MSG_RX_DONE) {
            /* Only the two ends know k: the tag must be the sender's. */
            FUZZ_ASSERT(ack[0] == MSG_ACK_TYPE && memcmp(ack + 1, id, CLIENT_MSG_ID) == 0);
            FUZZ_ASSERT(memcmp(ack + 1 + CLIENT_MSG_ID, tag, MSG_ACK_TAG) == 0);
            FUZZ_ASSERT(key < 2);
        }
    }
    free(blob);
    free(m);
}

/* Deliver a one-byte message id to r->dest: its key of the replies in rkey;
 * false when dest did not take it. */
static bool deliver_to_dest(struct rx_state *r, const uint8_t *id, uint8_t rkey[MSG_KEY])
{
    struct msg_from from = {.link = 9, .chain = 9, .now_ms = r->now, .wall_ms = WALL0 + r->now};
    uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN], *blob;
    struct client_msg *got[8];
    size_t blob_len, n;
    enum msg_rx_result res;

    FUZZ_ASSERT(msg_seal(&blob, &blob_len, keys[0].pk, id, NULL, (const uint8_t *)"q", 1,
                         WALL0 + r->now, NULL, rkey) == 0);
    n = msg_frag_build(f, id, blob, blob_len, 0);
    res = msg_rx_fragment(&r->dest, &from, f, n, keys, 1, ack);
    free(blob);
    while ((n = msg_rx_recv(&r->dest, got, 8)) > 0) /* keep its inbox open */
        while (n-- > 0)
            free(got[n]);
    return res == MSG_RX_DONE;
}

static void reply(struct rx_state *r, struct fuzz_in *in)
{
    uint8_t id[CLIENT_MSG_ID] = {0, 0xee}, rid[CLIENT_MSG_ID], rkey[MSG_KEY], f[MSG_FRAG_MAX];
    uint8_t ack[MSG_ACK_LEN], *m, *blob;
    struct msg_from path;
    size_t size, order, cut, blob_len, nf, len;
    bool known;

    id[0] = fz_u8(in);
    known = fz_u8(in) & 1;
    size = fz_u16(in) % (r->o.max_message + 64) + 1;
    order = fz_u8(in) % 3;
    cut = fz_u8(in);
    if (!deliver_to_dest(r, id, rkey) || !(m = malloc(size)))
        return;
    for (size_t i = 0; i < size; i++)
        m[i] = (uint8_t)(i * 7 + size);
    if (msg_reply_seal(&r->dest, id, m, size, rid, &blob, &blob_len, &path) != 0) {
        free(m);
        return;
    }
    FUZZ_ASSERT(path.link == 9 && path.chain == 9 && rid[0] == MSG_REPLY_TYPE);
    if (known)
        msg_rx_sent(&r->rx, id, rkey, WALL0 + r->now);
    nf = msg_frag_count(blob_len);
    r->reply = true;
    for (size_t k = 0; k < (order == 2 ? 2 * nf : nf); k++) {
        size_t i = order == 1 ? nf - 1 - k : order == 2 ? k / 2 : k;
        const struct client_msg *last;

        len = msg_frag_build(f, rid, blob, blob_len, i);
        if ((cut & 1) && i == (cut >> 1) % nf)
            len -= len < 1 + (cut >> 4) ? len : 1 + (cut >> 4);
        if (give(r, f, len, ack) != MSG_RX_DONE)
            continue;
        /* Only the sender that kept the key reads it, whole. */
        FUZZ_ASSERT(known);
        last = r->rx.inbox[(r->rx.in_head + r->rx.in_count - 1) % r->rx.inbox_max];
        FUZZ_ASSERT(last->has_reply_to && memcmp(last->reply_to, id, CLIENT_MSG_ID) == 0);
        FUZZ_ASSERT(last->len == size && memcmp(last->data, m, size) == 0);
    }
    r->reply = false;
    free(blob);
    free(m);
}

static void recv_some(struct rx_state *r, struct fuzz_in *in)
{
    struct client_msg *out[8];
    size_t n = msg_rx_recv(&r->rx, out, fz_u8(in) % 8 + 1);

    /* docs/CONFIG.md: max_message is the largest message accepted. */
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(out[i]->len >= 1 && out[i]->len <= r->o.max_message);
        free(out[i]);
    }
    check_caps(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct rx_state r;

    fuzz_begin();
    memset(&r, 0, sizeof(r));
    client_opts_defaults(&r.o);
    r.o.inbox_messages = fz_u8(&in) % 8 + 1;
    r.o.max_message = fz_u16(&in) % 8192 + 1;
    r.o.inbox_bytes = (uint64_t)fz_u16(&in) * 4;
    r.o.reassembly_timeout_ms = fz_u8(&in) * 10u;
    FUZZ_ASSERT(msg_rx_init(&r.rx, &r.o, &r.st) == 0);
    FUZZ_ASSERT(msg_rx_init(&r.dest, &r.o, &r.st) == 0);
    while (in.n > 0) {
        switch (fz_u8(&in) % 7) {
        case 0:
            raw(&r, &in);
            break;
        case 1:
            real(&r, &in);
            break;
        case 2:
            r.now += fz_u16(&in);
            msg_rx_expire(&r.rx, r.now, WALL0 + r.now);
            check_caps(&r);
            break;
        case 3:
            recv_some(&r, &in);
            break;
        case 4: /* fragments from elsewhere: another link or delivery chain */
            r.link = fz_u8(&in);
            r.reply = r.link >> 7;
            r.link %= 3;
            r.chain = fz_u8(&in) % 3;
            break;
        case 5:
            grid(&r, &in);
            break;
        default:
            reply(&r, &in);
            break;
        }
    }
    msg_rx_free(&r.rx);
    msg_rx_free(&r.dest);
    return 0;
}
