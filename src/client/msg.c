/* msg.c - end-to-end encryption, fragments, reassembly and the inbox. */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "lib/htab.h"
#include "client/msg.h"
#include "lib/bytes.h"

/* The labels name the sealed message format: version 2 carries sent_ms. */
#define E2E_LABEL       "ovl-e2e-v2"
#define E2E_ACK_LABEL   "ovl-e2e-ack-v2"
#define E2E_REPLY_LABEL "ovl-e2e-reply-v2"

/* A delivery chain (link, ID) or, with chain 0, a whole link, while it
 * has partial messages: how many, and what they cost. */
struct msg_src {
    struct msg_src *prev, *next; /* rx->srcs */
    uint64_t link;
    uint32_t chain, parts;
    uint64_t bytes;
};

/* A message being reassembled. Fragments are kept in arrival order, one
 * MSG_FRAG_DATA slot each, so the buffer grows with what arrived (doubling,
 * up to the claimed total), never with the claim alone. */
struct msg_live {
    uint32_t total, nfrags, got, cap; /* cap: slots in buf */
    uint64_t cost;                    /* in rx->part_bytes and in both sources */
    struct msg_src *src[2];           /* its delivery chain and its link */
    uint8_t *buf;                     /* ciphertext only: nothing to wipe */
    uint32_t slot[];                  /* per fragment: 1 + the slot it is in, 0 until it arrives */
};

/* One message by ID: live (lv set), a tombstone, a junk marker or a key
 * of a message we sent. */
struct msg_part {
    uint8_t id[CLIENT_MSG_ID];
    UT_hash_handle hh;
    struct msg_part *prev, *next; /* rx->list[kind] */
    uint8_t kind;                 /* enum msg_kind */
    uint64_t t_ms;                /* live, junk: since (monotonic); done, sent: expiry (wall) */
    struct msg_live *lv;
    uint8_t ack[MSG_ACK_TAG]; /* done: its acknowledgement tag */
    uint8_t key[MSG_KEY];     /* done, sent: rkey (secret) */
    uint64_t link;            /* done: the link serial it came on, 0 for a reply */
    uint32_t chain;           /* done: its delivery ID there */
};

/* k = first output of KDF2(H(label), dh || eph_pk || onion_pk); ack and
 * rkey (each may be NULL) are derived from it. */
static int e2e_key(struct ovl_aead *a, uint8_t *ack, uint8_t *rkey,
                   const uint8_t dh[OVL_X25519_LEN], const uint8_t eph_pk[OVL_X25519_LEN],
                   const uint8_t onion_pk[OVL_X25519_LEN])
{
    uint8_t ck[OVL_HASH_LEN], ikm[3 * OVL_X25519_LEN], k[OVL_HASH_LEN];
    int rc;

    ovl_hash2(ck, (const uint8_t *)E2E_LABEL, strlen(E2E_LABEL), NULL, 0);
    memcpy(ikm, dh, OVL_X25519_LEN);
    memcpy(ikm + OVL_X25519_LEN, eph_pk, OVL_X25519_LEN);
    memcpy(ikm + 2 * OVL_X25519_LEN, onion_pk, OVL_X25519_LEN);
    ovl_kdf2(k, NULL, ck, ikm, sizeof(ikm));
    rc = ovl_aead_init(a, OVL_AEAD_CHACHA20POLY1305, k);
    if (ack) {
        ovl_kdf_label(ck, k, E2E_ACK_LABEL);
        memcpy(ack, ck, MSG_ACK_TAG);
    }
    if (rkey)
        ovl_kdf_label(rkey, k, E2E_REPLY_LABEL);
    ovl_wipe(ikm, sizeof(ikm));
    ovl_wipe(k, sizeof(k));
    return rc;
}

int msg_seal(uint8_t **blob, size_t *blob_len, const uint8_t onion_pk[OVL_X25519_LEN],
             const uint8_t id[CLIENT_MSG_ID], const uint8_t *reply_pk, const uint8_t *m, size_t len,
             uint64_t wall_ms, uint8_t ack[MSG_ACK_TAG], uint8_t rkey[MSG_KEY])
{
    uint8_t eph_sk[OVL_X25519_LEN], dh[OVL_X25519_LEN], nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    size_t hdr = MSG_PT_HDR + (reply_pk ? OVL_ED25519_PK : 0), total;
    uint8_t *b = NULL;
    int rc;

    *blob = NULL;
    *blob_len = 0;
    if (!m || len == 0 || len > SIZE_MAX - MSG_OVERHEAD_MAX)
        return OVL_EINVAL;
    total = OVL_X25519_LEN + hdr + len + OVL_AEAD_TAG;
    b = malloc(total);
    if (!b)
        return OVL_ENOMEM;
    ovl_x25519_keypair(b, eph_sk);
    rc = ovl_x25519(dh, eph_sk, onion_pk);
    if (rc)
        goto fail;
    rc = e2e_key(&a, ack, rkey, dh, b, onion_pk);
    if (rc)
        goto fail;
    b[OVL_X25519_LEN] = reply_pk ? CLIENT_F_REPLY : 0;
    /* Whole seconds: the window needs no more, and the destination learns
     * the sender's clock no closer than that. */
    st_le64(b + OVL_X25519_LEN + 1, wall_ms / 1000);
    if (reply_pk)
        memcpy(b + OVL_X25519_LEN + MSG_PT_HDR, reply_pk, OVL_ED25519_PK);
    memcpy(b + OVL_X25519_LEN + hdr, m, len);
    ovl_nonce(nonce, 0);
    rc = ovl_aead_seal(&a, b + OVL_X25519_LEN, b + OVL_X25519_LEN, hdr + len, id, CLIENT_MSG_ID,
                       nonce);
    ovl_aead_wipe(&a);
    if (rc)
        goto fail;
    ovl_wipe(eph_sk, sizeof(eph_sk));
    ovl_wipe(dh, sizeof(dh));
    *blob = b;
    *blob_len = total;
    return 0;
fail:
    ovl_wipe(eph_sk, sizeof(eph_sk));
    ovl_wipe(dh, sizeof(dh));
    if (b)
        ovl_wipe(b, total);
    free(b);
    return rc;
}

/* Try one onion key: decrypt into m->data (pt_len bytes) on success. */
static int open_with(struct client_msg *m, const uint8_t *blob, size_t blob_len,
                     const uint8_t id[CLIENT_MSG_ID], const struct dir_onion *k, uint8_t *ack,
                     uint8_t *rkey)
{
    uint8_t dh[OVL_X25519_LEN], nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    int rc;

    rc = ovl_x25519(dh, k->sk, blob);
    if (rc)
        return rc;
    rc = e2e_key(&a, ack, rkey, dh, blob, k->pk);
    ovl_wipe(dh, sizeof(dh));
    if (rc)
        return rc;
    ovl_nonce(nonce, 0);
    rc = ovl_aead_open(&a, m->data, blob + OVL_X25519_LEN, blob_len - OVL_X25519_LEN, id,
                       CLIENT_MSG_ID, nonce);
    ovl_aead_wipe(&a);
    return rc;
}

int msg_open(struct client_msg **out, const uint8_t *blob, size_t blob_len,
             const uint8_t id[CLIENT_MSG_ID], const struct dir_onion *keys, unsigned n_keys,
             uint8_t ack[MSG_ACK_TAG], uint8_t rkey[MSG_KEY])
{
    struct client_msg *m;
    size_t pt_len, hdr;
    int rc = OVL_ECRYPTO;
    unsigned i;

    *out = NULL;
    if (blob_len < MSG_BLOB_MIN)
        return OVL_EPROTO;
    pt_len = blob_len - OVL_X25519_LEN - OVL_AEAD_TAG;
    /* Decrypt straight into the message and slide the data down after. */
    m = calloc(1, sizeof(*m) + pt_len);
    if (!m)
        return OVL_ENOMEM;
    for (i = 0; i < n_keys; i++) {
        rc = open_with(m, blob, blob_len, id, &keys[i], ack, rkey);
        if (rc == 0)
            break;
    }
    if (rc) {
        free(m);
        return OVL_ECRYPTO;
    }
    if (m->data[0] & ~CLIENT_F_REPLY)
        goto bad;
    hdr = MSG_PT_HDR + ((m->data[0] & CLIENT_F_REPLY) ? OVL_ED25519_PK : 0);
    if (pt_len <= hdr) /* empty messages are never sent */
        goto bad;
    m->sent_ms = ld_le64(m->data + 1);
    m->sent_ms = m->sent_ms < UINT64_MAX / 1000 ? m->sent_ms * 1000 : UINT64_MAX;
    m->has_from = (m->data[0] & CLIENT_F_REPLY) != 0;
    if (m->has_from)
        memcpy(m->from, m->data + MSG_PT_HDR, OVL_ED25519_PK);
    memcpy(m->id, id, CLIENT_MSG_ID);
    m->len = pt_len - hdr;
    memmove(m->data, m->data + hdr, m->len);
    *out = m;
    return 0;
bad:
    ovl_wipe(m->data, pt_len);
    free(m);
    return OVL_EPROTO;
}

/* Seal (len bytes) or open (len bytes with the tag) buf in place under
 * kr = first output of KDF2(rkey, rid), zero nonce, ad = id (a reply). */
static int reply_crypt(bool seal, const uint8_t rkey[MSG_KEY], const uint8_t rid[CLIENT_MSG_ID],
                       const uint8_t id[CLIENT_MSG_ID], uint8_t *buf, size_t len)
{
    uint8_t kr[OVL_HASH_LEN], nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    int rc;

    ovl_kdf2(kr, NULL, rkey, rid, CLIENT_MSG_ID);
    rc = ovl_aead_init(&a, OVL_AEAD_CHACHA20POLY1305, kr);
    ovl_wipe(kr, sizeof(kr));
    ovl_nonce(nonce, 0);
    if (rc == 0)
        rc = seal ? ovl_aead_seal(&a, buf, buf, len, id, CLIENT_MSG_ID, nonce)
                  : ovl_aead_open(&a, buf, buf, len, id, CLIENT_MSG_ID, nonce);
    ovl_aead_wipe(&a);
    return rc;
}

size_t msg_frag_count(size_t blob_len)
{
    return (blob_len + MSG_FRAG_DATA - 1) / MSG_FRAG_DATA;
}

size_t msg_frag_build(uint8_t out[MSG_FRAG_MAX], const uint8_t id[CLIENT_MSG_ID],
                      const uint8_t *blob, size_t blob_len, size_t idx)
{
    size_t off = idx * MSG_FRAG_DATA;
    size_t n = blob_len - off < MSG_FRAG_DATA ? blob_len - off : MSG_FRAG_DATA;

    memcpy(out, id, CLIENT_MSG_ID);
    st_le32(out + CLIENT_MSG_ID, (uint32_t)off);
    st_le32(out + CLIENT_MSG_ID + 4, (uint32_t)blob_len);
    memcpy(out + MSG_FRAG_HDR, blob + off, n);
    return MSG_FRAG_HDR + n;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* What reassembling a blob of total bytes costs once every fragment is in. */
static uint64_t full_cost(uint64_t total)
{
    uint64_t nfrags = msg_frag_count(total);

    return sizeof(struct msg_part) + sizeof(struct msg_live) + nfrags * (4 + MSG_FRAG_DATA);
}

int msg_rx_init(struct msg_rx *rx, const struct client_opts *o, struct client_stats *st)
{
    uint64_t b = o->inbox_bytes;

    memset(rx, 0, sizeof(*rx));
    if (!o->inbox_messages || !o->max_message || !o->tombstones || !st)
        return OVL_EINVAL;
    rx->max_message = o->max_message;
    rx->inbox_bytes_max = b;
    rx->inbox_max = o->inbox_messages;
    rx->timeout_ms = o->reassembly_timeout_ms;
    rx->window_ms = o->replay_window_ms;
    rx->tomb_max = o->tombstones;
    /* A link's or a chain's share still takes one largest message. */
    rx->chain_bytes_max = min_u64(b, max_u64(b / 8, full_cost(o->max_message + MSG_OVERHEAD_MAX)));
    rx->link_bytes_max = min_u64(b, max_u64(b / 4, rx->chain_bytes_max));
    rx->chain_parts_max = o->inbox_messages / 8 ? o->inbox_messages / 8 : 1;
    rx->link_parts_max = o->inbox_messages / 4 ? o->inbox_messages / 4 : 1;
    rx->st = st;
    rx->inbox = calloc(o->inbox_messages, sizeof(*rx->inbox));
    return rx->inbox ? 0 : OVL_ENOMEM;
}

/* One copy each of uthash's add, find and delete. */
static bool by_id_add(struct msg_rx *rx, struct msg_part *p)
{
    HASH_ADD(hh, rx->by_id, id, CLIENT_MSG_ID, p);
    return p->hh.tbl != NULL; /* out of memory leaves it out */
}

static struct msg_part *by_id_find(struct msg_rx *rx, const uint8_t *id)
{
    struct msg_part *p;

    HASH_FIND(hh, rx->by_id, id, CLIENT_MSG_ID, p);
    return p;
}

static void by_id_del(struct msg_rx *rx, struct msg_part *p)
{
    HASH_DEL(rx->by_id, p);
}

/* The tally of (link, chain), made when missing; NULL when out of memory. */
static struct msg_src *src_get(struct msg_rx *rx, uint64_t link, uint32_t chain)
{
    struct msg_src *s;

    DL_FOREACH(rx->srcs, s)
    {
        if (s->link == link && s->chain == chain)
            return s;
    }
    s = calloc(1, sizeof(*s));
    if (s) {
        s->link = link;
        s->chain = chain;
        DL_APPEND(rx->srcs, s);
    }
    return s;
}

/* Forget s once it has no partial message left (NULL-safe). */
static void src_release(struct msg_rx *rx, struct msg_src *s)
{
    if (s && s->parts == 0) {
        DL_DELETE(rx->srcs, s);
        free(s);
    }
}

static void live_free(struct msg_live *lv)
{
    if (lv)
        free(lv->buf);
    free(lv);
}

/* Take p out of every table, give back what it cost, and free it. */
static void part_forget(struct msg_rx *rx, struct msg_part *p)
{
    struct msg_live *lv = p->lv;

    by_id_del(rx, p);
    DL_DELETE(rx->list[p->kind], p);
    rx->count[p->kind]--;
    for (int i = 0; lv && i < 2; i++) {
        lv->src[i]->parts--;
        lv->src[i]->bytes -= lv->cost;
        src_release(rx, lv->src[i]);
    }
    if (lv)
        rx->part_bytes -= lv->cost;
    live_free(lv);
    ovl_wipe(p, sizeof(*p)); /* key */
    free(p);
}

/* A new entry of kind for id, in the table and counted but in no list
 * yet; NULL when out of memory. */
static struct msg_part *entry_new(struct msg_rx *rx, const uint8_t *id, enum msg_kind kind,
                                  uint64_t t_ms)
{
    struct msg_part *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    memcpy(p->id, id, CLIENT_MSG_ID);
    p->kind = (uint8_t)kind;
    p->t_ms = t_ms;
    if (!by_id_add(rx, p)) {
        free(p);
        return NULL;
    }
    rx->count[kind]++;
    return p;
}

/* Drop p (live, or NULL for a message never stored) and mark id as junk
 * so its remaining fragments are ignored. Markers are capped at
 * inbox_messages, the oldest going first: they protect nothing. */
static void part_drop(struct msg_rx *rx, struct msg_part *p, const uint8_t *id, uint64_t now_ms)
{
    uint8_t key[CLIENT_MSG_ID];

    memcpy(key, id, CLIENT_MSG_ID); /* id may point into p */
    if (p)
        part_forget(rx, p);
    if (rx->count[MSG_JUNK] >= rx->inbox_max)
        part_forget(rx, rx->list[MSG_JUNK]);
    p = entry_new(rx, key, MSG_JUNK, now_ms);
    if (p) /* a missing marker only lets late fragments in again */
        DL_APPEND(rx->list[MSG_JUNK], p);
}

/* Remember delivered id until expiry (wall clock), in expiry order. A
 * full table loses its first entry only once that one's window is over;
 * NULL (counted) otherwise, or when out of memory. */
static struct msg_part *tomb_new(struct msg_rx *rx, const uint8_t *id, uint64_t expiry,
                                 uint64_t wall_ms)
{
    struct msg_part *p, *at;

    if (rx->count[MSG_DONE] >= rx->tomb_max) {
        if (wall_ms <= rx->list[MSG_DONE]->t_ms) {
            rx->st->refused_tombstones++;
            return NULL;
        }
        part_forget(rx, rx->list[MSG_DONE]);
    }
    p = entry_new(rx, id, MSG_DONE, expiry);
    if (!p) {
        rx->st->dropped_inbox_full++;
        return NULL;
    }
    /* Nearly always the latest expiry: walk back from the tail. */
    at = rx->list[MSG_DONE] ? rx->list[MSG_DONE]->prev : NULL;
    while (at && at->t_ms > expiry)
        at = at == rx->list[MSG_DONE] ? NULL : at->prev;
    if (at)
        DL_APPEND_ELEM(rx->list[MSG_DONE], at, p);
    else
        DL_PREPEND(rx->list[MSG_DONE], p);
    return p;
}

/* Check that a fragment sits on the grid of its total. */
static bool frag_valid(const struct msg_rx *rx, uint32_t off, uint32_t total, size_t flen)
{
    uint64_t blob_max = rx->max_message + MSG_OVERHEAD_MAX;
    size_t want;

    if (total < MSG_REPLY_MIN || total > blob_max || off >= total || off % MSG_FRAG_DATA != 0)
        return false;
    want = total - off < MSG_FRAG_DATA ? total - off : MSG_FRAG_DATA;
    return flen == want;
}

/* Count bytes more for lv if the budget and both its shares allow; false
 * (counted) if not. */
static bool charge(struct msg_rx *rx, struct msg_live *lv, uint64_t bytes)
{
    if (rx->part_bytes + rx->in_bytes + bytes > rx->inbox_bytes_max) {
        rx->st->dropped_inbox_full++;
        return false;
    }
    if (lv->src[0]->bytes + bytes > rx->chain_bytes_max ||
        lv->src[1]->bytes + bytes > rx->link_bytes_max) {
        rx->st->refused_share++;
        return false;
    }
    rx->part_bytes += bytes;
    lv->src[0]->bytes += bytes;
    lv->src[1]->bytes += bytes;
    lv->cost += bytes;
    return true;
}

/* Whether a new message from s (chain, link) is refused: the whole
 * budget can never hold it, or s holds its share of partial messages. */
static bool part_refused(struct msg_rx *rx, struct msg_src *s[2], uint64_t full)
{
    if (rx->count[MSG_LIVE] >= rx->inbox_max || full > rx->inbox_bytes_max) {
        rx->st->dropped_inbox_full++;
        return true;
    }
    if (s[0]->parts >= rx->chain_parts_max || s[1]->parts >= rx->link_parts_max ||
        full > rx->chain_bytes_max) {
        rx->st->refused_share++;
        return true;
    }
    return false;
}

/* Start reassembling id for from's chain and link. Only the bookkeeping
 * is charged now, the fragments as they come. NULL (counted) when refused. */
static struct msg_part *part_new(struct msg_rx *rx, const struct msg_from *from,
                                 const uint8_t id[CLIENT_MSG_ID], uint32_t total)
{
    uint32_t nfrags = (uint32_t)msg_frag_count(total);
    struct msg_src *s[2] = {src_get(rx, from->link, from->chain), src_get(rx, from->link, 0)};
    struct msg_live *lv = NULL;
    struct msg_part *p = NULL;

    if (!s[0] || !s[1] || part_refused(rx, s, full_cost(total)))
        goto fail;
    lv = calloc(1, sizeof(*lv) + (size_t)nfrags * sizeof(lv->slot[0]));
    if (!lv)
        goto fail;
    lv->total = total;
    lv->nfrags = nfrags;
    lv->src[0] = s[0];
    lv->src[1] = s[1];
    if (!charge(rx, lv, sizeof(*p) + sizeof(*lv) + (uint64_t)nfrags * sizeof(lv->slot[0])))
        goto fail;
    p = entry_new(rx, id, MSG_LIVE, from->now_ms);
    if (!p)
        goto fail_charged;
    p->lv = lv;
    s[0]->parts++;
    s[1]->parts++;
    DL_APPEND(rx->list[MSG_LIVE], p);
    return p;
fail_charged:
    rx->part_bytes -= lv->cost;
    s[0]->bytes -= lv->cost;
    s[1]->bytes -= lv->cost;
fail:
    live_free(lv);
    src_release(rx, s[0]);
    if (s[1] != s[0]) /* the same tally for a chain ID of 0 */
        src_release(rx, s[1]);
    return NULL;
}

/* Store fragment idx (n bytes) of lv in the next slot, growing the buffer
 * when it is full; false (counted) when there is no room. */
static bool part_store(struct msg_rx *rx, struct msg_live *lv, uint32_t idx, const uint8_t *data,
                       size_t n)
{
    if (lv->got == lv->cap) {
        uint32_t cap = lv->cap ? lv->cap * 2 : 1;
        uint8_t *b;

        if (cap > lv->nfrags)
            cap = lv->nfrags;
        if (!charge(rx, lv, (uint64_t)(cap - lv->cap) * MSG_FRAG_DATA))
            return false;
        b = realloc(lv->buf, (size_t)cap * MSG_FRAG_DATA);
        if (!b) {
            rx->st->dropped_inbox_full++;
            return false;
        }
        lv->buf = b;
        lv->cap = cap;
    }
    memcpy(lv->buf + (size_t)lv->got * MSG_FRAG_DATA, data, n);
    lv->slot[idx] = ++lv->got;
    return true;
}

/* Return the blob in fragment order: the buffer itself when the fragments
 * came in order, else a malloc'd copy (*copy set); NULL when out of memory. */
static uint8_t *part_blob(const struct msg_live *lv, bool *copy)
{
    uint32_t i = 0;
    uint8_t *b;

    while (i < lv->nfrags && lv->slot[i] == i + 1)
        i++;
    *copy = i < lv->nfrags;
    if (!*copy)
        return lv->buf;
    b = malloc(lv->total);
    for (i = 0; b && i < lv->nfrags; i++) {
        size_t off = (size_t)i * MSG_FRAG_DATA;

        memcpy(b + off, lv->buf + (size_t)(lv->slot[i] - 1) * MSG_FRAG_DATA,
               lv->total - off < MSG_FRAG_DATA ? lv->total - off : MSG_FRAG_DATA);
    }
    return b;
}

/* Write the acknowledgement record of id into ack; MSG_RX_DONE. */
static enum msg_rx_result ack_write(uint8_t *ack, const uint8_t id[CLIENT_MSG_ID],
                                    const uint8_t tag[MSG_ACK_TAG])
{
    ack[0] = MSG_ACK_TYPE;
    memcpy(ack + 1, id, CLIENT_MSG_ID);
    memcpy(ack + 1 + CLIENT_MSG_ID, tag, MSG_ACK_TAG);
    return MSG_RX_DONE;
}

static void client_msg_free(struct client_msg *m)
{
    ovl_wipe(m->data, m->len);
    free(m);
}

/* Put m in the inbox if the caps allow; frees it (counted) otherwise. */
static bool inbox_push(struct msg_rx *rx, struct client_msg *m)
{
    if (rx->in_count >= rx->inbox_max ||
        rx->part_bytes + rx->in_bytes + m->len > rx->inbox_bytes_max) {
        rx->st->dropped_inbox_full++;
        client_msg_free(m);
        return false;
    }
    rx->inbox[(rx->in_head + rx->in_count) % rx->inbox_max] = m;
    rx->in_count++;
    rx->in_bytes += m->len;
    rx->st->messages_received++;
    return true;
}

/* Open a reply's blob (rid its ID) with the key kept for the message it
 * answers, the first 16 bytes of the blob. A reply carries no time: it is
 * taken as sealed now, so its tombstone outlives the key. */
static int reply_open(struct msg_rx *rx, struct client_msg **out, const uint8_t *blob,
                      size_t blob_len, const uint8_t rid[CLIENT_MSG_ID], uint64_t wall_ms)
{
    struct msg_part *s = by_id_find(rx, blob);
    size_t len = blob_len - CLIENT_MSG_ID;
    struct client_msg *m;

    if (!s || s->kind != MSG_SENT)
        return OVL_ECRYPTO;
    if (!(m = calloc(1, sizeof(*m) + len)))
        return OVL_ENOMEM;
    memcpy(m->data, blob + CLIENT_MSG_ID, len);
    if (reply_crypt(false, s->key, rid, blob, m->data, len) != 0) {
        free(m);
        return OVL_ECRYPTO;
    }
    memcpy(m->id, rid, CLIENT_MSG_ID);
    memcpy(m->reply_to, blob, CLIENT_MSG_ID);
    m->has_reply_to = true;
    m->sent_ms = wall_ms;
    m->len = len - OVL_AEAD_TAG;
    *out = m;
    return 0;
}

/* Open p's blob (p is forgotten); *out the message, or NULL (counted,
 * and id marked as junk) when it does not decrypt or was sealed outside
 * the window. */
static void part_open(struct msg_rx *rx, struct msg_part *p, const struct dir_onion *keys,
                      unsigned n_keys, const struct msg_from *from, struct client_msg **out,
                      uint8_t tag[MSG_ACK_TAG], uint8_t rkey[MSG_KEY])
{
    uint8_t id[CLIENT_MSG_ID];
    bool copy = false;
    uint8_t *blob = part_blob(p->lv, &copy);
    int rc = !blob         ? OVL_ENOMEM
             : from->reply ? reply_open(rx, out, blob, p->lv->total, p->id, from->wall_ms)
                           : msg_open(out, blob, p->lv->total, p->id, keys, n_keys, tag, rkey);

    if (copy)
        free(blob);
    memcpy(id, p->id, CLIENT_MSG_ID);
    part_forget(rx, p);
    if (rc == 0 && (*out)->len > rx->max_message) {
        /* The grid admits max_message + the overhead with a reply key, so
         * a message without one could be 32 bytes too long. */
        client_msg_free(*out);
        *out = NULL;
        rc = OVL_EPROTO;
    }
    if (rc == 0 && ((*out)->sent_ms > from->wall_ms + rx->window_ms ||
                    from->wall_ms > (*out)->sent_ms + rx->window_ms)) {
        rx->st->dropped_stale++;
        client_msg_free(*out);
        *out = NULL;
    } else if (rc) {
        if (rc == OVL_ECRYPTO)
            rx->st->dropped_auth++;
        else
            rx->st->dropped_bad++;
    }
    if (!*out)
        part_drop(rx, NULL, id, from->now_ms);
}

/* The last fragment arrived: decrypt, check the time, leave a tombstone
 * (with the return path and rkey of a message that may be answered) and
 * deliver. */
static enum msg_rx_result part_complete(struct msg_rx *rx, struct msg_part *p,
                                        const struct dir_onion *keys, unsigned n_keys,
                                        const struct msg_from *from, uint8_t *ack)
{
    struct client_msg *m = NULL;
    uint8_t tag[MSG_ACK_TAG], rkey[MSG_KEY] = {0};
    enum msg_rx_result r = MSG_RX_DROPPED;

    part_open(rx, p, keys, n_keys, from, &m, tag, rkey);
    /* The tombstone comes first: nothing is delivered that a replay could
     * deliver again. */
    p = m ? tomb_new(rx, m->id, m->sent_ms + rx->window_ms, from->wall_ms) : NULL;
    if (m && !p)
        client_msg_free(m);
    if (p) {
        memcpy(p->ack, tag, MSG_ACK_TAG);
        memcpy(p->key, rkey, MSG_KEY);
        p->link = from->reply ? 0 : from->link;
        p->chain = from->chain;
        m->received_ms = from->wall_ms;
        /* A full inbox drops it unacknowledged and forgets it, so the
         * sender's next copy can get in once there is room. */
        if (inbox_push(rx, m))
            r = ack_write(ack, p->id, tag);
        else
            part_forget(rx, p);
    }
    ovl_wipe(rkey, sizeof(rkey));
    return r;
}

enum msg_rx_result msg_rx_fragment(struct msg_rx *rx, const struct msg_from *from,
                                   const uint8_t *frag, size_t len, const struct dir_onion *keys,
                                   unsigned n_keys, uint8_t ack[MSG_ACK_LEN])
{
    struct msg_part *p;
    uint32_t off, total, idx;
    size_t flen;

    rx->st->fragments_in++;
    if (len < MSG_FRAG_HDR || len > MSG_FRAG_MAX) {
        rx->st->dropped_bad++;
        return MSG_RX_DROPPED;
    }
    off = ld_le32(frag + CLIENT_MSG_ID);
    total = ld_le32(frag + CLIENT_MSG_ID + 4);
    flen = len - MSG_FRAG_HDR;
    p = by_id_find(rx, frag);
    if (p && p->kind != MSG_LIVE) {
        /* A retransmission of a delivered message ends with its last
         * fragment: that one earns a fresh acknowledgement (the first may
         * have been lost). A replay gets the same, and nothing more. */
        if (p->kind == MSG_DONE && total > 0 &&
            off / MSG_FRAG_DATA == (total - 1) / MSG_FRAG_DATA) {
            rx->st->duplicates++;
            return ack_write(ack, p->id, p->ack) == MSG_RX_DONE ? MSG_RX_AGAIN : MSG_RX_IGNORED;
        }
        return MSG_RX_IGNORED;
    }
    if (!frag_valid(rx, off, total, flen)) {
        rx->st->dropped_bad++;
        part_drop(rx, p, frag, from->now_ms);
        return MSG_RX_DROPPED;
    }
    if (p && p->lv->total != total) {
        rx->st->dropped_reassembly++;
        part_drop(rx, p, frag, from->now_ms);
        return MSG_RX_DROPPED;
    }
    if (!p && !(p = part_new(rx, from, frag, total)))
        return MSG_RX_DROPPED; /* no marker: a later copy may find room */
    idx = off / MSG_FRAG_DATA;
    if (p->lv->slot[idx]) {
        if (memcmp(p->lv->buf + (size_t)(p->lv->slot[idx] - 1) * MSG_FRAG_DATA, frag + MSG_FRAG_HDR,
                   flen) == 0)
            return MSG_RX_IGNORED;
        rx->st->dropped_reassembly++;
        part_drop(rx, p, frag, from->now_ms);
        return MSG_RX_DROPPED;
    }
    if (!part_store(rx, p->lv, idx, frag + MSG_FRAG_HDR, flen)) {
        part_forget(rx, p); /* no marker either */
        return MSG_RX_DROPPED;
    }
    if (p->lv->got < p->lv->nfrags)
        return MSG_RX_PARTIAL;
    return part_complete(rx, p, keys, n_keys, from, ack);
}

void msg_rx_expire(struct msg_rx *rx, uint64_t now_ms, uint64_t wall_ms)
{
    struct msg_part **l = rx->list;

    /* Each list is in time order, so stop at the first young entry. */
    while (l[MSG_LIVE] && now_ms - l[MSG_LIVE]->t_ms >= rx->timeout_ms) {
        rx->st->dropped_reassembly++;
        part_drop(rx, l[MSG_LIVE], l[MSG_LIVE]->id, now_ms);
    }
    while (l[MSG_JUNK] && now_ms - l[MSG_JUNK]->t_ms >= rx->timeout_ms)
        part_forget(rx, l[MSG_JUNK]);
    /* A tombstone goes when a replay of its message would be refused as
     * stale anyway: by the wall clock, whatever it did meanwhile. */
    while (l[MSG_DONE] && wall_ms > l[MSG_DONE]->t_ms)
        part_forget(rx, l[MSG_DONE]);
    while (l[MSG_SENT] && wall_ms > l[MSG_SENT]->t_ms)
        part_forget(rx, l[MSG_SENT]);
}

int msg_rx_seen(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], uint64_t sent_ms,
                uint64_t wall_ms)
{
    if (sent_ms > wall_ms + rx->window_ms || wall_ms > sent_ms + rx->window_ms) {
        rx->st->dropped_stale++;
        return OVL_ETIMEDOUT;
    }
    if (by_id_find(rx, id))
        return OVL_EEXIST;
    return tomb_new(rx, id, sent_ms + rx->window_ms, wall_ms) ? 0 : OVL_ENOMEM;
}

void msg_rx_sent(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], const uint8_t rkey[MSG_KEY],
                 uint64_t wall_ms)
{
    struct msg_part *p;

    if (by_id_find(rx, id)) /* a random ID: only a clash, and it cannot be answered */
        return;
    if (rx->count[MSG_SENT] >= rx->tomb_max) {
        rx->st->reply_keys_dropped++;
        part_forget(rx, rx->list[MSG_SENT]);
    }
    p = entry_new(rx, id, MSG_SENT, wall_ms + rx->window_ms);
    if (p) {
        memcpy(p->key, rkey, MSG_KEY);
        DL_APPEND(rx->list[MSG_SENT], p);
    }
}

int msg_reply_seal(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], const uint8_t *m, size_t len,
                   uint8_t rid[CLIENT_MSG_ID], uint8_t **blob, size_t *blob_len,
                   struct msg_from *path)
{
    struct msg_part *p = by_id_find(rx, id);
    uint8_t *b;

    *blob = NULL;
    if (!p || p->kind != MSG_DONE)
        return OVL_ENOENT;
    if (!p->link)
        return OVL_EPERM;
    if (!m || len == 0 || len > SIZE_MAX - MSG_REPLY_MIN)
        return OVL_EINVAL;
    if (!(b = malloc(len + MSG_REPLY_MIN - 1)))
        return OVL_ENOMEM;
    ovl_random(rid, CLIENT_MSG_ID);
    rid[0] = MSG_REPLY_TYPE;
    memcpy(b, id, CLIENT_MSG_ID);
    memcpy(b + CLIENT_MSG_ID, m, len);
    if (reply_crypt(true, p->key, rid, id, b + CLIENT_MSG_ID, len) != 0) {
        ovl_wipe(b, len + CLIENT_MSG_ID);
        free(b);
        return OVL_ECRYPTO;
    }
    *blob = b;
    *blob_len = len + MSG_REPLY_MIN - 1;
    path->link = p->link;
    path->chain = p->chain;
    return 0;
}

uint64_t msg_rx_held(const struct msg_rx *rx)
{
    return rx->part_bytes + rx->in_bytes +
           (uint64_t)(rx->count[MSG_DONE] + rx->count[MSG_JUNK] + rx->count[MSG_SENT]) *
               sizeof(struct msg_part);
}

size_t msg_rx_recv(struct msg_rx *rx, struct client_msg **out, size_t max)
{
    size_t k = 0;

    while (k < max && rx->in_count > 0) {
        struct client_msg *m = rx->inbox[rx->in_head];

        rx->inbox[rx->in_head] = NULL;
        rx->in_head = (rx->in_head + 1) % rx->inbox_max;
        rx->in_count--;
        rx->in_bytes -= m->len;
        out[k++] = m;
    }
    return k;
}

void msg_rx_free(struct msg_rx *rx)
{
    struct msg_part *p, *tmp;
    struct msg_src *s, *stmp;
    struct client_msg *m;

    if (!rx)
        return;
    HASH_ITER(hh, rx->by_id, p, tmp)
    {
        by_id_del(rx, p);
        live_free(p->lv);
        ovl_wipe(p, sizeof(*p));
        free(p);
    }
    DL_FOREACH_SAFE(rx->srcs, s, stmp)
    {
        free(s);
    }
    rx->srcs = NULL;
    memset(rx->list, 0, sizeof(rx->list));
    memset(rx->count, 0, sizeof(rx->count));
    rx->part_bytes = 0;
    while (rx->inbox && msg_rx_recv(rx, &m, 1) == 1)
        client_msg_free(m);
    free(rx->inbox);
    rx->inbox = NULL;
}
