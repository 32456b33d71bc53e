/* test_msg.c - end-to-end messages (client/msg.h) without a network:
 * sealing, fragments, reassembly and its budget, replay protection, the
 * inbox. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "client/msg.h"
#include "lib/bytes.h"
#include "check_main.h"

#define WALL   UINT64_C(1700000000000) /* the receiver's wall clock in these tests */
#define WINDOW UINT64_C(600000)        /* the default replay_window */

static const uint8_t msg_id[CLIENT_MSG_ID] = {1, 2,  3,  4,  5,  6,  7,  8,
                                              9, 10, 11, 12, 13, 14, 15, 16};

static void onion_key(struct dir_onion *k)
{
    memset(k, 0, sizeof(*k));
    ovl_x25519_keypair(k->pk, k->sk);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return p;
}

static void small_opts(struct client_opts *o)
{
    client_opts_defaults(o);
    o->inbox_messages = 4;
    o->max_message = 300 * 1024;
    o->inbox_bytes = 4 * 1024 * 1024;
    o->reassembly_timeout_ms = 1000;
}

/* A fragment from link `link`, delivery ID `chain`, at monotonic now. */
static struct msg_from from_at(uint64_t link, uint32_t chain, uint64_t now)
{
    return (struct msg_from){.link = link, .chain = chain, .now_ms = now, .wall_ms = WALL};
}

/* ---- end-to-end encryption ---- */

START_TEST(e2e_round_trip)
{
    struct dir_onion keys[2];
    uint8_t reply[OVL_ED25519_PK];
    uint8_t *m = pattern(1000, 7), *blob;
    uint8_t ack_s[MSG_ACK_TAG], ack_r[MSG_ACK_TAG], ack_other[MSG_ACK_TAG];
    struct client_msg *out;
    size_t blob_len;

    onion_key(&keys[0]);
    onion_key(&keys[1]);
    memset(reply, 0xab, sizeof(reply));
    ck_assert_int_eq(
        msg_seal(&blob, &blob_len, keys[1].pk, msg_id, reply, m, 1000, WALL, ack_s, NULL), 0);
    ck_assert_uint_eq(blob_len, 1000 + MSG_OVERHEAD_MAX);
    /* The previous key opens it after the current one fails. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 2, ack_r, NULL), 0);
    /* Both ends derive the same acknowledgement tag. */
    ck_assert_mem_eq(ack_s, ack_r, MSG_ACK_TAG);
    ck_assert_uint_eq(out->len, 1000);
    ck_assert_mem_eq(out->data, m, 1000);
    ck_assert(out->has_from);
    ck_assert_mem_eq(out->from, reply, OVL_ED25519_PK);
    ck_assert_mem_eq(out->id, msg_id, CLIENT_MSG_ID);
    ck_assert_uint_eq(out->sent_ms, WALL); /* the sealing time travels inside */
    free(out);
    /* Only the wrong key: rejected. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 1, NULL, NULL), OVL_ECRYPTO);
    ck_assert_ptr_null(out);
    /* Another message ID (the associated data): rejected. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, keys[0].pk, &keys[1], 1, NULL, NULL),
                     OVL_ECRYPTO);
    /* Any flipped byte: rejected. */
    blob[blob_len / 2] ^= 1;
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, &keys[1], 1, NULL, NULL), OVL_ECRYPTO);
    free(blob);

    ck_assert_int_eq(
        msg_seal(&blob, &blob_len, keys[0].pk, msg_id, NULL, m, 1, 12345, ack_other, NULL), 0);
    ck_assert_uint_eq(blob_len, 1 + MSG_BLOB_MIN);
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 1, NULL, NULL), 0);
    /* A fresh ephemeral key per message: another message, another tag. */
    ck_assert_int_ne(memcmp(ack_s, ack_other, MSG_ACK_TAG), 0);
    ck_assert(!out->has_from);
    ck_assert_uint_eq(out->sent_ms, 12000); /* whole seconds */
    ck_assert_uint_eq(out->len, 1);
    ck_assert_uint_eq(out->data[0], m[0]);
    free(out);
    free(blob);
    ck_assert_int_eq(msg_seal(&blob, &blob_len, keys[0].pk, msg_id, NULL, m, 0, WALL, NULL, NULL),
                     OVL_EINVAL);
    ck_assert_ptr_null(blob);
    free(m);
}
END_TEST

/* ---- fragments and reassembly ---- */

struct rxt {
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    uint8_t *blob, *m;
    size_t blob_len, len, nfrags;
    uint8_t ack[MSG_ACK_TAG];     /* the sender's tag */
    uint8_t rkey[MSG_KEY];        /* the sender's key of the replies */
    uint8_t ack_rec[MSG_ACK_LEN]; /* the receiver's last acknowledgement */
};

static void rxt_init(struct rxt *t, size_t len)
{
    memset(t, 0, sizeof(*t));
    small_opts(&t->o);
    onion_key(&t->key);
    ck_assert_int_eq(msg_rx_init(&t->rx, &t->o, &t->st), 0);
    t->len = len;
    t->m = pattern(len, (unsigned)len);
    ck_assert_int_eq(
        msg_seal(&t->blob, &t->blob_len, t->key.pk, msg_id, NULL, t->m, len, WALL, t->ack, t->rkey),
        0);
    t->nfrags = msg_frag_count(t->blob_len);
}

static void rxt_free(struct rxt *t)
{
    msg_rx_free(&t->rx);
    msg_rx_free(&t->rx); /* idempotent */
    free(t->blob);
    free(t->m);
}

static enum msg_rx_result feed(struct rxt *t, size_t idx, uint64_t now)
{
    uint8_t f[MSG_FRAG_MAX];
    size_t n = msg_frag_build(f, msg_id, t->blob, t->blob_len, idx);
    struct msg_from from = from_at(1, 7, now);

    return msg_rx_fragment(&t->rx, &from, f, n, &t->key, 1, t->ack_rec);
}

static void expect_message(struct rxt *t)
{
    struct client_msg *out[2];

    ck_assert_uint_eq(msg_rx_recv(&t->rx, out, 2), 1);
    ck_assert_uint_eq(out[0]->len, t->len);
    ck_assert_mem_eq(out[0]->data, t->m, t->len);
    ck_assert_uint_eq(out[0]->received_ms, WALL);
    free(out[0]);
}

/* Around one fragment's worth of blob, one cell's body, and bigger. */
static const size_t sizes[] = {
    1,         MSG_FRAG_DATA - MSG_BLOB_MIN, MSG_FRAG_DATA - MSG_BLOB_MIN + 1, 851, 852, 853, 5000,
    200 * 1024};

START_TEST(frag_sizes_in_order)
{
    struct rxt t;

    rxt_init(&t, sizes[_i]);
    for (size_t i = 0; i < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 0), i + 1 < t.nfrags ? MSG_RX_PARTIAL : MSG_RX_DONE);
    ck_assert_uint_eq(t.st.fragments_in, t.nfrags);
    ck_assert_uint_eq(t.st.messages_received, 1);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    expect_message(&t);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_sizes_reversed)
{
    struct rxt t;

    rxt_init(&t, sizes[_i]);
    for (size_t i = t.nfrags; i-- > 0;)
        ck_assert_int_eq(feed(&t, i, 0), i > 0 ? MSG_RX_PARTIAL : MSG_RX_DONE);
    expect_message(&t);
    rxt_free(&t);
}
END_TEST

/* Odd fragments first, then even ones: reassembly puts them in order. */
START_TEST(frag_sizes_interleaved)
{
    struct rxt t;
    size_t done = 0;

    rxt_init(&t, sizes[_i]);
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 1 - pass; i < t.nfrags; i += 2)
            done += feed(&t, i, 0) == MSG_RX_DONE;
    ck_assert_uint_eq(done, 1);
    expect_message(&t);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_boundaries)
{
    /* A message of MSG_FRAG_DATA - MSG_BLOB_MIN bytes fills exactly one fragment. */
    ck_assert_uint_eq(msg_frag_count(MSG_FRAG_DATA), 1);
    ck_assert_uint_eq(msg_frag_count(MSG_FRAG_DATA + 1), 2);
    ck_assert_uint_eq(MSG_FRAG_MAX, BODY_DATA_MAX);
    ck_assert_uint_eq(MSG_FRAG_HDR + MSG_FRAG_DATA, BODY_DATA_MAX);
    ck_assert_uint_eq(MSG_BLOB_MIN, 57); /* eph_pk, flags, sent_ms, tag */
}
END_TEST

START_TEST(frag_duplicate_and_replay)
{
    struct rxt t;
    struct client_msg *out[1];

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_IGNORED);
    for (size_t i = 1; i < t.nfrags; i++)
        ck_assert_int_ne(feed(&t, i, 0), MSG_RX_DROPPED);
    expect_message(&t);
    ck_assert_uint_eq(t.ack_rec[0], MSG_ACK_TYPE);
    ck_assert_mem_eq(t.ack_rec + 1, msg_id, CLIENT_MSG_ID);
    ck_assert_mem_eq(t.ack_rec + 1 + CLIENT_MSG_ID, t.ack, MSG_ACK_TAG);
    /* A replay of the whole message is not delivered twice; its last
     * fragment is acknowledged again (the first ack may have been lost). */
    memset(t.ack_rec, 0, sizeof(t.ack_rec));
    for (size_t i = 0; i + 1 < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 10), MSG_RX_IGNORED);
    ck_assert_int_eq(feed(&t, t.nfrags - 1, 10), MSG_RX_AGAIN);
    ck_assert_mem_eq(t.ack_rec + 1 + CLIENT_MSG_ID, t.ack, MSG_ACK_TAG);
    ck_assert_uint_eq(t.st.duplicates, 1);
    ck_assert_uint_eq(msg_rx_recv(&t.rx, out, 1), 0);
    ck_assert_uint_eq(t.st.messages_received, 1);
    ck_assert_uint_eq(t.st.dropped_reassembly + t.st.dropped_bad, 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_inconsistent_overlap)
{
    struct rxt t;
    uint8_t f[MSG_FRAG_MAX];
    struct msg_from from = from_at(1, 7, 0);
    size_t n;

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_PARTIAL);
    n = msg_frag_build(f, msg_id, t.blob, t.blob_len, 1);
    f[n - 1] ^= 0x55;
    ck_assert_int_eq(msg_rx_fragment(&t.rx, &from, f, n, &t.key, 1, t.ack_rec), MSG_RX_DROPPED);
    ck_assert_uint_eq(t.st.dropped_reassembly, 1);
    ck_assert_uint_eq(t.rx.count[MSG_LIVE], 0);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    /* The rest of that message is ignored, never delivered. */
    for (size_t i = 0; i < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 0), MSG_RX_IGNORED);
    ck_assert_uint_eq(t.st.messages_received, 0);
    /* A junk marker is no tombstone: it protects nothing. */
    ck_assert_uint_eq(t.rx.count[MSG_DONE], 0);
    rxt_free(&t);
}
END_TEST

#define BLOB5000 (5000 + MSG_BLOB_MIN) /* rxt_init(&t, 5000)'s blob */

/* Hand-made fragments that break one rule each. */
static const struct bad_frag {
    const char *what;
    uint32_t off, total;
    size_t data_len;
    bool reassembly; /* counted as dropped_reassembly (vs dropped_bad) */
} bad_frags[] = {
    {"total above max_message + overhead", 0, 300 * 1024 + MSG_OVERHEAD_MAX + 1, MSG_FRAG_DATA,
     false},
    {"total below the smallest blob", 0, MSG_REPLY_MIN - 1, MSG_REPLY_MIN - 1, false},
    {"offset off the grid", 100, BLOB5000, MSG_FRAG_DATA, false},
    {"offset past total", 7 * MSG_FRAG_DATA, BLOB5000, 10, false},
    {"short middle fragment", 0, BLOB5000, MSG_FRAG_DATA - 1, false},
    {"last fragment too long", 6 * MSG_FRAG_DATA, BLOB5000, BLOB5000 - 6 * MSG_FRAG_DATA + 1,
     false},
    {"empty fragment", 0, BLOB5000, 0, false},
    {"total differs from the first fragment", MSG_FRAG_DATA, 6000, MSG_FRAG_DATA, true},
};

START_TEST(frag_rejects)
{
    const struct bad_frag *b = &bad_frags[_i];
    struct rxt t;
    uint8_t f[MSG_FRAG_HDR + MSG_FRAG_DATA] = {0};
    struct msg_from from = from_at(1, 7, 0);

    rxt_init(&t, 5000);
    ck_assert_uint_eq(t.blob_len, BLOB5000);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    memcpy(f, msg_id, CLIENT_MSG_ID);
    st_le32(f + CLIENT_MSG_ID, b->off);
    st_le32(f + CLIENT_MSG_ID + 4, b->total);
    ck_assert_msg(msg_rx_fragment(&t.rx, &from, f, MSG_FRAG_HDR + b->data_len, &t.key, 1,
                                  t.ack_rec) == MSG_RX_DROPPED,
                  "%s", b->what);
    ck_assert_uint_eq(b->reassembly ? t.st.dropped_reassembly : t.st.dropped_bad, 1);
    ck_assert_uint_eq(t.rx.count[MSG_LIVE], 0);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_IGNORED);
    ck_assert_uint_eq(t.st.messages_received, 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_wrong_key)
{
    struct rxt t;

    rxt_init(&t, 900);
    onion_key(&t.key); /* the receiver's key changed completely */
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_DROPPED);
    ck_assert_uint_eq(t.st.dropped_auth, 1);
    ck_assert_uint_eq(t.st.messages_received, 0);
    ck_assert_uint_eq(t.rx.count[MSG_DONE], 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_timeout)
{
    struct rxt t;

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 1000), MSG_RX_PARTIAL);
    msg_rx_expire(&t.rx, 1999, WALL);
    ck_assert_uint_eq(t.rx.count[MSG_LIVE], 1);
    ck_assert_uint_eq(t.st.dropped_reassembly, 0);
    msg_rx_expire(&t.rx, 2000, WALL);
    ck_assert_uint_eq(t.rx.count[MSG_LIVE], 0);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    ck_assert_uint_eq(t.st.dropped_reassembly, 1);
    ck_assert_int_eq(feed(&t, 1, 2001), MSG_RX_IGNORED);
    /* The marker ages out too; a fresh start is then possible. */
    msg_rx_expire(&t.rx, 3001, WALL);
    ck_assert_uint_eq(t.rx.count[MSG_JUNK], 0);
    ck_assert_int_eq(feed(&t, 0, 3002), MSG_RX_PARTIAL);
    rxt_free(&t);
}
END_TEST

/* Seal a fresh message (random ID, or *idp) of len bytes, stamped sent_ms,
 * to key and feed it whole from `from`; return the last result. */
static enum msg_rx_result feed_msg(struct msg_rx *rx, const struct msg_from *from,
                                   const struct dir_onion *key, size_t len, uint64_t sent_ms,
                                   const uint8_t *idp)
{
    uint8_t id[CLIENT_MSG_ID], f[MSG_FRAG_MAX], ack[MSG_ACK_LEN], *blob, *m = pattern(len, 3);
    enum msg_rx_result r = MSG_RX_DROPPED;
    size_t blob_len, nf;

    if (idp)
        memcpy(id, idp, CLIENT_MSG_ID);
    else
        ovl_random(id, sizeof(id));
    ck_assert_int_eq(msg_seal(&blob, &blob_len, key->pk, id, NULL, m, len, sent_ms, NULL, NULL), 0);
    nf = msg_frag_count(blob_len);
    for (size_t i = 0; i < nf; i++) {
        size_t n = msg_frag_build(f, id, blob, blob_len, i);

        r = msg_rx_fragment(rx, from, f, n, key, 1, ack);
        if (r == MSG_RX_DROPPED)
            break;
    }
    free(blob);
    free(m);
    return r;
}

static enum msg_rx_result feed_new(struct msg_rx *rx, const struct dir_onion *key, size_t len)
{
    struct msg_from from = from_at(1, 7, 0);

    return feed_msg(rx, &from, key, len, WALL, NULL);
}

START_TEST(inbox_message_cap)
{
    struct client_opts o;
    struct client_stats st = {0};
    struct msg_rx rx;
    struct dir_onion key;
    struct client_msg *out[8];
    size_t k;

    small_opts(&o);
    o.inbox_messages = 2;
    onion_key(&key);
    ck_assert_int_eq(msg_rx_init(&rx, &o, &st), 0);
    ck_assert_int_eq(feed_new(&rx, &key, 10), MSG_RX_DONE);
    ck_assert_int_eq(feed_new(&rx, &key, 20), MSG_RX_DONE);
    ck_assert_int_eq(feed_new(&rx, &key, 30), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 1);
    ck_assert_uint_eq(rx.in_bytes, 30);
    k = msg_rx_recv(&rx, out, 8);
    ck_assert_uint_eq(k, 2);
    ck_assert_uint_eq(out[0]->len, 10); /* oldest first */
    ck_assert_uint_eq(out[1]->len, 20);
    free(out[0]);
    free(out[1]);
    ck_assert_uint_eq(rx.in_bytes, 0);
    ck_assert_int_eq(feed_new(&rx, &key, 40), MSG_RX_DONE);
    msg_rx_free(&rx);
}
END_TEST

START_TEST(inbox_byte_cap)
{
    struct client_opts o;
    struct client_stats st = {0};
    struct msg_rx rx;
    struct dir_onion key;
    struct client_msg *out[4];

    small_opts(&o);
    o.inbox_bytes = 8000;
    onion_key(&key);
    ck_assert_int_eq(msg_rx_init(&rx, &o, &st), 0);
    /* Too big to even start reassembling. */
    ck_assert_int_eq(feed_new(&rx, &key, 9000), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 1);
    ck_assert_int_eq(feed_new(&rx, &key, 5000), MSG_RX_DONE);
    /* 5000 bytes in the inbox leave no room for 4000 more. */
    ck_assert_int_eq(feed_new(&rx, &key, 4000), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 2);
    ck_assert_uint_eq(msg_rx_recv(&rx, out, 4), 1);
    free(out[0]);
    ck_assert_int_eq(feed_new(&rx, &key, 4000), MSG_RX_DONE);
    msg_rx_free(&rx);
}
END_TEST

/* ---- the reassembly budget: charged by arrival, shared by links and chains ---- */

/* Defaults but an 8 MiB budget: a chain's share is one largest message
 * (about 1 MiB), a link's 2 MiB; 128 and 256 partial messages. */
static void budget_init(struct client_opts *o, struct client_stats *st, struct msg_rx *rx,
                        struct dir_onion *key)
{
    client_opts_defaults(o);
    o->inbox_bytes = 8 * 1024 * 1024;
    memset(st, 0, sizeof(*st));
    onion_key(key);
    ck_assert_int_eq(msg_rx_init(rx, o, st), 0);
    ck_assert_uint_eq(rx->chain_parts_max, 128);
    ck_assert_uint_eq(rx->link_parts_max, 256);
    ck_assert_uint_ge(rx->chain_bytes_max, o->max_message + MSG_OVERHEAD_MAX);
    ck_assert_uint_eq(rx->link_bytes_max, 2 * 1024 * 1024);
}

/* The first fragment of a made-up message that claims total bytes. */
static enum msg_rx_result forge_first(struct msg_rx *rx, const struct msg_from *from,
                                      uint32_t total, const struct dir_onion *key)
{
    uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];

    ovl_random(f, CLIENT_MSG_ID);
    st_le32(f + CLIENT_MSG_ID, 0);
    st_le32(f + CLIENT_MSG_ID + 4, total);
    memset(f + MSG_FRAG_HDR, 0xee, MSG_FRAG_DATA);
    return msg_rx_fragment(rx, from, f, MSG_FRAG_MAX, key, 1, ack);
}

/* A first fragment claiming a megabyte costs what arrived, and a real
 * message's buffer never holds more than twice what arrived. */
START_TEST(reasm_charged_by_arrival)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from from = from_at(1, 7, 0), real = from_at(1, 8, 0);
    uint32_t total;
    uint64_t book;
    uint8_t *m, *blob, f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];
    size_t blob_len, nf;

    budget_init(&o, &st, &rx, &key);
    total = (uint32_t)(o.max_message + MSG_OVERHEAD_MAX);
    book = 4 * msg_frag_count(total) + 512; /* a slot per claimed fragment, and the entry */
    ck_assert_int_eq(forge_first(&rx, &from, total, &key), MSG_RX_PARTIAL);
    ck_assert_uint_le(rx.part_bytes, MSG_FRAG_DATA + book);
    ck_assert_uint_eq(st.dropped_inbox_full + st.refused_share, 0);

    m = pattern(o.max_message, 5);
    ck_assert_int_eq(
        msg_seal(&blob, &blob_len, key.pk, msg_id, NULL, m, o.max_message, WALL, NULL, NULL), 0);
    nf = msg_frag_count(blob_len);
    for (size_t i = 0; i < nf; i++) {
        size_t n = msg_frag_build(f, msg_id, blob, blob_len, i);
        uint64_t before = rx.part_bytes;

        ck_assert_int_eq(msg_rx_fragment(&rx, &real, f, n, &key, 1, ack),
                         i + 1 < nf ? MSG_RX_PARTIAL : MSG_RX_DONE);
        if (i + 1 < nf)
            ck_assert_uint_le(rx.part_bytes - (MSG_FRAG_DATA + book),
                              2 * (i + 1) * MSG_FRAG_DATA + book);
        else
            ck_assert_uint_lt(rx.part_bytes, before); /* given back at completion */
    }
    ck_assert_uint_eq(st.messages_received, 1);
    free(blob);
    free(m);
    msg_rx_free(&rx);
}
END_TEST

/* One delivery chain floods first fragments: it gets its share of partial
 * messages, and other chains on the same link, and other links, still
 * deliver. */
START_TEST(reasm_chain_share)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from flood = from_at(1, 7, 0), same_link = from_at(1, 8, 0),
                    other = from_at(2, 7, 0);
    uint32_t total;
    unsigned kept = 0;

    budget_init(&o, &st, &rx, &key);
    total = (uint32_t)(o.max_message + MSG_OVERHEAD_MAX);
    for (unsigned i = 0; i < 1000; i++)
        kept += forge_first(&rx, &flood, total, &key) == MSG_RX_PARTIAL;
    ck_assert_uint_eq(kept, rx.chain_parts_max);
    ck_assert_uint_eq(st.refused_share, 1000 - kept);
    ck_assert_uint_le(rx.part_bytes, rx.chain_bytes_max);
    ck_assert_int_eq(feed_msg(&rx, &same_link, &key, 200 * 1024, WALL, NULL), MSG_RX_DONE);
    ck_assert_int_eq(feed_msg(&rx, &other, &key, 200 * 1024, WALL, NULL), MSG_RX_DONE);
    ck_assert_uint_eq(st.dropped_inbox_full, 0);
    msg_rx_free(&rx);
}
END_TEST

/* One link floods from many delivery chains: it gets its share, other
 * links still deliver. */
START_TEST(reasm_link_share)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from other = from_at(2, 7, 0), more = from_at(1, 999, 0);
    uint32_t total;
    unsigned kept = 0;

    budget_init(&o, &st, &rx, &key);
    total = (uint32_t)(o.max_message + MSG_OVERHEAD_MAX);
    for (uint32_t chain = 1; chain <= 64; chain++) {
        struct msg_from flood = from_at(1, chain, 0);

        for (unsigned i = 0; i < 20; i++) /* 1280 in all: more than inbox_messages */
            kept += forge_first(&rx, &flood, total, &key) == MSG_RX_PARTIAL;
    }
    ck_assert_uint_eq(kept, rx.link_parts_max);
    ck_assert_uint_eq(rx.count[MSG_LIVE], kept);
    ck_assert_uint_le(rx.part_bytes, rx.link_bytes_max);
    ck_assert_uint_eq(st.refused_share, 1280 - kept);
    ck_assert_int_eq(feed_msg(&rx, &other, &key, 200 * 1024, WALL, NULL), MSG_RX_DONE);
    ck_assert_int_eq(feed_msg(&rx, &more, &key, 1000, WALL, NULL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.refused_share, 1280 - kept + 1);
    ck_assert_uint_eq(st.dropped_inbox_full, 0);
    msg_rx_free(&rx);
}
END_TEST

/* A chain's partial messages hold at most its share of bytes: a second
 * nearly complete megabyte is dropped, the first still completes. */
START_TEST(reasm_share_bytes)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from from = from_at(1, 7, 0), next = from_at(1, 8, 0);
    uint8_t ids[2][CLIENT_MSG_ID], *blob[2], *m, f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];
    size_t blob_len, nf;
    enum msg_rx_result r = MSG_RX_PARTIAL;

    budget_init(&o, &st, &rx, &key);
    m = pattern(o.max_message, 9);
    for (int k = 0; k < 2; k++) {
        ovl_random(ids[k], CLIENT_MSG_ID);
        ck_assert_int_eq(
            msg_seal(&blob[k], &blob_len, key.pk, ids[k], NULL, m, o.max_message, WALL, NULL, NULL),
            0);
    }
    nf = msg_frag_count(blob_len);
    for (size_t i = 0; i + 1 < nf; i++)
        ck_assert_int_eq(msg_rx_fragment(&rx, &from, f,
                                         msg_frag_build(f, ids[0], blob[0], blob_len, i), &key, 1,
                                         ack),
                         MSG_RX_PARTIAL);
    for (size_t i = 0; i + 1 < nf && r == MSG_RX_PARTIAL; i++)
        r = msg_rx_fragment(&rx, &from, f, msg_frag_build(f, ids[1], blob[1], blob_len, i), &key, 1,
                            ack);
    ck_assert_int_eq(r, MSG_RX_DROPPED);
    ck_assert_uint_eq(st.refused_share, 1);
    ck_assert_uint_le(rx.part_bytes, rx.chain_bytes_max);
    ck_assert_uint_eq(rx.count[MSG_LIVE], 1);
    ck_assert_int_eq(msg_rx_fragment(&rx, &from, f,
                                     msg_frag_build(f, ids[0], blob[0], blob_len, nf - 1), &key, 1,
                                     ack),
                     MSG_RX_DONE);
    ck_assert_int_eq(feed_msg(&rx, &next, &key, 5000, WALL, NULL), MSG_RX_DONE);
    ck_assert_uint_eq(st.messages_received, 2);
    free(blob[0]);
    free(blob[1]);
    free(m);
    msg_rx_free(&rx);
}
END_TEST

/* ---- replay protection ---- */

static void replay_init(struct client_opts *o, struct client_stats *st, struct msg_rx *rx,
                        struct dir_onion *key, uint32_t tombstones)
{
    small_opts(o);
    o->tombstones = tombstones;
    memset(st, 0, sizeof(*st));
    onion_key(key);
    ck_assert_int_eq(msg_rx_init(rx, o, st), 0);
}

static void drain(struct msg_rx *rx)
{
    struct client_msg *out[8];
    size_t n;

    while ((n = msg_rx_recv(rx, out, 8)) > 0)
        while (n-- > 0)
            free(out[n]);
}

/* Junk of every kind: malformed fragments and whole one-fragment
 * messages that do not decrypt, each under a fresh ID. */
static void junk_flood(struct msg_rx *rx, const struct dir_onion *key, unsigned count)
{
    struct msg_from from = from_at(3, 3, 0);
    uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];

    for (unsigned i = 0; i < count; i++) {
        ovl_random(f, sizeof(f));
        st_le32(f + CLIENT_MSG_ID, 0);
        st_le32(f + CLIENT_MSG_ID + 4, i % 2 ? MSG_FRAG_DATA : 1); /* undecryptable, or bad */
        ck_assert_int_eq(msg_rx_fragment(rx, &from, f, MSG_FRAG_MAX, key, 1, ack), MSG_RX_DROPPED);
    }
}

/* A delivered message replayed within the window is not delivered again,
 * whatever came in between: junk, more messages than inbox_messages,
 * reassembly_timeout passing, a full tombstone table (which refuses new
 * messages rather than forget one). Once the window is over the replay is
 * stale. */
START_TEST(replay_after_flood)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from from = from_at(1, 7, 0), late;

    replay_init(&o, &st, &rx, &key, 16);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 3000, WALL, msg_id), MSG_RX_DONE);
    drain(&rx);
    junk_flood(&rx, &key, 2000);
    ck_assert_uint_eq(st.dropped_auth, 1000);
    ck_assert_uint_eq(st.dropped_bad, 1000);
    ck_assert_uint_le(rx.count[MSG_JUNK], o.inbox_messages);
    ck_assert_uint_eq(rx.count[MSG_DONE], 1);
    for (unsigned i = 1; i < 16; i++) {
        ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL, NULL), MSG_RX_DONE);
        drain(&rx);
    }
    ck_assert_uint_eq(rx.count[MSG_DONE], 16);
    /* Full of tombstones inside their window: a new message is refused. */
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL, NULL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.refused_tombstones, 1);
    ck_assert_uint_eq(st.messages_received, 16);
    /* The replay: its last fragment is acknowledged again, nothing more. */
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 3000, WALL, msg_id), MSG_RX_AGAIN);
    /* Long after reassembly_timeout, still inside the window. */
    from.now_ms = 100 * o.reassembly_timeout_ms;
    from.wall_ms = WALL + WINDOW;
    msg_rx_expire(&rx, from.now_ms, from.wall_ms);
    ck_assert_uint_eq(rx.count[MSG_DONE], 16);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 3000, WALL, msg_id), MSG_RX_AGAIN);
    ck_assert_uint_eq(st.duplicates, 2);
    ck_assert_uint_eq(st.messages_received, 16);
    ck_assert_uint_eq(rx.in_count, 0);
    /* The window is over: tombstones go, and the replay is stale. */
    late = from;
    late.wall_ms = WALL + WINDOW + 1;
    msg_rx_expire(&rx, late.now_ms, late.wall_ms);
    ck_assert_uint_eq(rx.count[MSG_DONE], 0);
    ck_assert_int_eq(feed_msg(&rx, &late, &key, 3000, WALL, msg_id), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_stale, 1);
    ck_assert_uint_eq(rx.in_count, 0);
    /* Fresh traffic flows. */
    ck_assert_int_eq(feed_msg(&rx, &late, &key, 3000, late.wall_ms, NULL), MSG_RX_DONE);
    ck_assert_uint_eq(st.messages_received, 17);
    msg_rx_free(&rx);
}
END_TEST

/* Messages sealed further than replay_window from the receiver's clock,
 * either way, are refused and leave no tombstone; at the edges they pass.
 * The stamp keeps whole seconds: WALL - WINDOW - 1 is a second too old. */
START_TEST(replay_window_edges)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from from = from_at(1, 7, 0);

    replay_init(&o, &st, &rx, &key, 16);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL - WINDOW - 1, NULL), MSG_RX_DROPPED);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL + WINDOW + 1000, NULL), MSG_RX_DROPPED);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, 0, NULL), MSG_RX_DROPPED);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, UINT64_MAX, NULL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_stale, 4);
    ck_assert_uint_eq(rx.count[MSG_DONE], 0);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL - WINDOW, NULL), MSG_RX_DONE);
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL + WINDOW, NULL), MSG_RX_DONE);
    ck_assert_uint_eq(st.messages_received, 2);
    ck_assert_uint_eq(rx.count[MSG_DONE], 2);
    msg_rx_free(&rx);
}
END_TEST

/* Tombstones leave in the order their windows end, whatever order they
 * came in; a full table makes room only from an ended window. */
START_TEST(replay_tombstone_order)
{
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    struct msg_from from = from_at(1, 7, 0);
    static const uint64_t sent_ago[] = {300000, 0, 500000}; /* windows end +300, +600, +100 s */

    replay_init(&o, &st, &rx, &key, 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL - sent_ago[i], NULL), MSG_RX_DONE);
        drain(&rx);
    }
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, WALL, NULL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.refused_tombstones, 1);
    /* 100 s later the first window ended: its tombstone makes room. */
    from.wall_ms = WALL + 100001;
    ck_assert_int_eq(feed_msg(&rx, &from, &key, 100, from.wall_ms, NULL), MSG_RX_DONE);
    ck_assert_uint_eq(rx.count[MSG_DONE], 3);
    msg_rx_expire(&rx, 0, WALL + 300001);
    ck_assert_uint_eq(rx.count[MSG_DONE], 2);
    msg_rx_expire(&rx, 0, WALL + 600001);
    ck_assert_uint_eq(rx.count[MSG_DONE], 1);
    msg_rx_expire(&rx, 0, WALL + 700002);
    ck_assert_uint_eq(rx.count[MSG_DONE], 0);
    msg_rx_free(&rx);
}
END_TEST

/* ---- replies ---- */

/* A receiver that got msg_id on link 1, delivery ID 7 (t), and its
 * sender (s), which kept the key of the replies. */
struct reply_pair {
    struct rxt t;
    struct client_opts o;
    struct client_stats st;
    struct msg_rx s;
};

static void pair_init(struct reply_pair *p, size_t len)
{
    rxt_init(&p->t, len);
    for (size_t i = 0; i < p->t.nfrags; i++)
        ck_assert_int_ne(feed(&p->t, i, 0), MSG_RX_DROPPED);
    ck_assert_uint_eq(p->t.st.messages_received, 1);
    memset(&p->st, 0, sizeof(p->st));
    small_opts(&p->o);
    ck_assert_int_eq(msg_rx_init(&p->s, &p->o, &p->st), 0);
    msg_rx_sent(&p->s, msg_id, p->t.rkey, WALL);
}

static void pair_free(struct reply_pair *p)
{
    msg_rx_free(&p->s);
    rxt_free(&p->t);
}

/* Hand fragment idx of reply rid (blob) to rx as coming back on our chain
 * (link 3, chain ID 9), cut bytes short. */
static enum msg_rx_result give_reply(struct msg_rx *rx, const uint8_t *rid, const uint8_t *blob,
                                     size_t blob_len, size_t idx, size_t cut, uint64_t wall)
{
    uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];
    size_t n = msg_frag_build(f, rid, blob, blob_len, idx);
    struct msg_from from = {.link = 3, .chain = 9, .now_ms = 0, .wall_ms = wall, .reply = true};

    return msg_rx_fragment(rx, &from, f, n - cut, NULL, 0, ack);
}

/* Give every fragment of a reply; return the last result. */
static enum msg_rx_result give_all(struct msg_rx *rx, const uint8_t *rid, const uint8_t *blob,
                                   size_t blob_len, uint64_t wall)
{
    enum msg_rx_result r = MSG_RX_DROPPED;

    for (size_t i = 0; i < msg_frag_count(blob_len); i++)
        r = give_reply(rx, rid, blob, blob_len, i, 0, wall);
    return r;
}

START_TEST(reply_round_trip)
{
    struct reply_pair p;
    struct client_msg *out[2];
    struct msg_from path;
    uint8_t rid[CLIENT_MSG_ID], rid2[CLIENT_MSG_ID], *blob, *blob2;
    uint8_t *m = pattern(2000, 3);
    size_t blob_len, blob2_len;

    pair_init(&p, 100);
    /* The receiver answers on the link and delivery ID the message came on. */
    ck_assert_int_eq(msg_reply_seal(&p.t.rx, msg_id, m, 2000, rid, &blob, &blob_len, &path), 0);
    ck_assert_uint_eq(path.link, 1);
    ck_assert_uint_eq(path.chain, 7);
    ck_assert_uint_eq(rid[0], MSG_REPLY_TYPE); /* the record's type byte */
    ck_assert_uint_eq(blob_len, 2000 + MSG_REPLY_MIN - 1);
    ck_assert_uint_eq(msg_frag_count(blob_len), 3);
    ck_assert_mem_eq(blob, msg_id, CLIENT_MSG_ID);
    /* The sender reassembles it and opens it with the key it kept. */
    ck_assert_int_eq(give_reply(&p.s, rid, blob, blob_len, 2, 0, WALL), MSG_RX_PARTIAL);
    ck_assert_int_eq(give_reply(&p.s, rid, blob, blob_len, 0, 0, WALL), MSG_RX_PARTIAL);
    ck_assert_int_eq(give_reply(&p.s, rid, blob, blob_len, 1, 0, WALL), MSG_RX_DONE);
    ck_assert_uint_eq(msg_rx_recv(&p.s, out, 2), 1);
    ck_assert(out[0]->has_reply_to);
    ck_assert_mem_eq(out[0]->reply_to, msg_id, CLIENT_MSG_ID);
    ck_assert_mem_eq(out[0]->id, rid, CLIENT_MSG_ID);
    ck_assert(!out[0]->has_from);
    ck_assert_uint_eq(out[0]->len, 2000);
    ck_assert_mem_eq(out[0]->data, m, 2000);
    free(out[0]);
    /* Replayed: remembered by its ID, never delivered twice. */
    ck_assert_int_ne(give_all(&p.s, rid, blob, blob_len, WALL + 1000), MSG_RX_DONE);
    ck_assert_uint_eq(p.st.duplicates, 1);
    ck_assert_uint_eq(msg_rx_recv(&p.s, out, 2), 0);
    /* A second answer to the same message: another ID, another key. */
    ck_assert_int_eq(msg_reply_seal(&p.t.rx, msg_id, m, 5, rid2, &blob2, &blob2_len, &path), 0);
    ck_assert_int_ne(memcmp(rid, rid2, CLIENT_MSG_ID), 0);
    ck_assert_int_ne(memcmp(blob + CLIENT_MSG_ID, blob2 + CLIENT_MSG_ID, 5), 0);
    ck_assert_int_eq(give_all(&p.s, rid2, blob2, blob2_len, WALL), MSG_RX_DONE);
    ck_assert_uint_eq(msg_rx_recv(&p.s, out, 2), 1);
    ck_assert_uint_eq(out[0]->len, 5);
    free(out[0]);
    free(blob2);
    /* A reply cannot be answered: it has no way back. */
    ck_assert_int_eq(msg_reply_seal(&p.s, rid, m, 5, rid2, &blob2, &blob2_len, &path), OVL_EPERM);
    ck_assert_ptr_null(blob2);
    ck_assert_int_eq(msg_reply_seal(&p.t.rx, rid, m, 5, rid2, &blob2, &blob2_len, &path),
                     OVL_ENOENT);
    ck_assert_int_eq(msg_reply_seal(&p.t.rx, msg_id, m, 0, rid2, &blob2, &blob2_len, &path),
                     OVL_EINVAL);
    ck_assert_uint_eq(p.st.dropped_auth + p.st.dropped_bad + p.st.dropped_reassembly, 0);
    ck_assert_uint_eq(p.s.count[MSG_LIVE], 0);
    ck_assert_uint_eq(p.s.part_bytes, 0);
    free(blob);
    free(m);
    pair_free(&p);
}
END_TEST

/* Only the sender reads a reply: another node, a wrong key, a changed
 * byte, a reply given as a message, and fragments cut short are dropped
 * and counted; nothing reaches an inbox. */
START_TEST(reply_refused)
{
    struct reply_pair p;
    struct client_opts o;
    struct client_stats st = {0};
    struct msg_rx other;
    struct msg_from path;
    struct client_msg *out[1];
    uint8_t rid[CLIENT_MSG_ID], *blob, key[MSG_KEY], *m = pattern(64, 5);
    size_t blob_len;

    pair_init(&p, 10);
    /* 64 bytes: a blob as long as a message's can be. */
    ck_assert_int_eq(msg_reply_seal(&p.t.rx, msg_id, m, 64, rid, &blob, &blob_len, &path), 0);
    /* A third node that sent nothing under that ID. */
    small_opts(&o);
    ck_assert_int_eq(msg_rx_init(&other, &o, &st), 0);
    ck_assert_int_eq(give_all(&other, rid, blob, blob_len, WALL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_auth, 1);
    /* ... or that kept another key under it. */
    msg_rx_free(&other);
    ck_assert_int_eq(msg_rx_init(&other, &o, &st), 0);
    ovl_random(key, sizeof(key));
    msg_rx_sent(&other, msg_id, key, WALL);
    ck_assert_int_eq(give_all(&other, rid, blob, blob_len, WALL), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_auth, 2);
    ck_assert_uint_eq(msg_rx_recv(&other, out, 1), 0);
    msg_rx_free(&other);
    /* A changed byte: refused, and its ID marked as junk. */
    blob[blob_len - 1] ^= 1;
    ck_assert_int_eq(give_all(&p.s, rid, blob, blob_len, WALL), MSG_RX_DROPPED);
    ck_assert_uint_eq(p.st.dropped_auth, 1);
    ck_assert_int_eq(give_all(&p.s, rid, blob, blob_len, WALL), MSG_RX_IGNORED);
    blob[blob_len - 1] ^= 1;
    /* Truncated: off the grid, dropped as bad. */
    rid[1] ^= 1;
    ck_assert_int_eq(give_reply(&p.s, rid, blob, blob_len, 0, 1, WALL), MSG_RX_DROPPED);
    ck_assert_uint_eq(p.st.dropped_bad, 1);
    ck_assert_int_eq(give_reply(&p.s, rid, blob, blob_len, 0, MSG_FRAG_MAX, WALL), MSG_RX_DROPPED);
    ck_assert_uint_eq(p.st.dropped_bad, 2);
    rid[1] ^= 1;
    /* A reply delivered as a message: no onion key opens it. */
    {
        uint8_t f[MSG_FRAG_MAX], ack[MSG_ACK_LEN];
        size_t n = msg_frag_build(f, rid, blob, blob_len, 0);
        struct msg_from from = from_at(2, 5, 0);

        f[1] ^= 2; /* another ID: the real one is junk at p.s by now */
        ck_assert_int_eq(msg_rx_fragment(&p.s, &from, f, n, &p.t.key, 1, ack), MSG_RX_DROPPED);
        ck_assert_uint_eq(p.st.dropped_auth, 2);
    }
    ck_assert_uint_eq(msg_rx_recv(&p.s, out, 1), 0);
    ck_assert_uint_eq(p.st.messages_received, 0);
    free(blob);
    free(m);
    pair_free(&p);
}
END_TEST

/* Keys are kept for the replay window and at most `tombstones` of them;
 * both ends wipe them when they go. */
START_TEST(reply_keys_bounded)
{
    struct reply_pair p;
    struct msg_from path;
    uint8_t rid[CLIENT_MSG_ID], *blob, id[CLIENT_MSG_ID];
    size_t blob_len;

    pair_init(&p, 10);
    ck_assert_int_eq(
        msg_reply_seal(&p.t.rx, msg_id, (const uint8_t *)"late", 4, rid, &blob, &blob_len, &path),
        0);
    ck_assert_uint_eq(p.s.count[MSG_SENT], 1);
    ck_assert_uint_gt(msg_rx_held(&p.s), 0);
    /* The sender's window ended: its key is gone, the reply unreadable. */
    msg_rx_expire(&p.s, 0, WALL + WINDOW + 1);
    ck_assert_uint_eq(p.s.count[MSG_SENT], 0);
    ck_assert_int_eq(give_all(&p.s, rid, blob, blob_len, WALL + WINDOW + 1), MSG_RX_DROPPED);
    ck_assert_uint_eq(p.st.dropped_auth, 1);
    free(blob);
    /* The receiver's window ended: it cannot answer any more. */
    msg_rx_expire(&p.t.rx, 0, WALL + WINDOW + 1);
    ck_assert_uint_eq(p.t.rx.count[MSG_DONE], 0);
    ck_assert_int_eq(
        msg_reply_seal(&p.t.rx, msg_id, (const uint8_t *)"x", 1, rid, &blob, &blob_len, &path),
        OVL_ENOENT);
    /* At most `tombstones` keys: the oldest goes first, counted. */
    msg_rx_free(&p.s);
    p.o.tombstones = 2;
    ck_assert_int_eq(msg_rx_init(&p.s, &p.o, &p.st), 0);
    for (unsigned i = 0; i < 3; i++) {
        memset(id, (int)i + 1, sizeof(id));
        msg_rx_sent(&p.s, id, p.t.rkey, WALL + i);
    }
    ck_assert_uint_eq(p.s.count[MSG_SENT], 2);
    ck_assert_uint_eq(p.st.reply_keys_dropped, 1);
    msg_rx_sent(&p.s, id, p.t.rkey, WALL); /* the same ID again: kept once */
    ck_assert_uint_eq(p.s.count[MSG_SENT], 2);
    pair_free(&p);
}
END_TEST

START_TEST(opts_defaults)
{
    struct client_opts o;

    client_opts_defaults(&o);
    ck_assert_uint_eq(o.length, 3);
    ck_assert_uint_eq(o.backups, 2);
    ck_assert_uint_eq(o.max_message, 1048576);
    ck_assert_uint_eq(o.send_queue, 1024);
    ck_assert_uint_eq(o.replay_window_ms, WINDOW);
    ck_assert_uint_eq(o.tombstones, 65536);
}
END_TEST

static Suite *msg_suite(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("msg");

    tcase_add_test(tc, e2e_round_trip);
    tcase_add_loop_test(tc, frag_sizes_in_order, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_loop_test(tc, frag_sizes_reversed, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_loop_test(tc, frag_sizes_interleaved, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_test(tc, frag_boundaries);
    tcase_add_test(tc, frag_duplicate_and_replay);
    tcase_add_test(tc, frag_inconsistent_overlap);
    tcase_add_loop_test(tc, frag_rejects, 0, sizeof(bad_frags) / sizeof(bad_frags[0]));
    tcase_add_test(tc, frag_wrong_key);
    tcase_add_test(tc, frag_timeout);
    tcase_add_test(tc, inbox_message_cap);
    tcase_add_test(tc, inbox_byte_cap);
    tcase_add_test(tc, opts_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("budget");
    tcase_add_test(tc, reasm_charged_by_arrival);
    tcase_add_test(tc, reasm_chain_share);
    tcase_add_test(tc, reasm_link_share);
    tcase_add_test(tc, reasm_share_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("replay");
    tcase_add_test(tc, replay_after_flood);
    tcase_add_test(tc, replay_window_edges);
    tcase_add_test(tc, replay_tombstone_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_test(tc, reply_round_trip);
    tcase_add_test(tc, reply_refused);
    tcase_add_test(tc, reply_keys_bounded);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(msg_suite)
