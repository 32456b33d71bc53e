/* msg.c - end-to-end encryption, fragments, reassembly and the inbox. */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "lib/htab.h"
#include "client/msg.h"
#include "lib/bytes.h"

#define E2E_LABEL "ovl-e2e-v1"

/* One message by ID: being reassembled (live) or finished / dropped (dead,
 * kept as a tombstone so its late or replayed fragments are ignored). */
struct msg_part {
    uint8_t id[CLIENT_MSG_ID];
    UT_hash_handle hh;
    struct msg_part *prev, *next; /* rx->live or rx->dead */
    bool live;
    uint64_t since_ms; /* live: first fragment; dead: when it died */
    uint32_t total, nfrags, got;
    size_t cost;              /* bytes counted in rx->part_bytes while live */
    uint8_t *bits;            /* nfrags bits: which fragments arrived */
    uint8_t *buf;             /* total bytes */
    bool delivered;           /* dead: it reached the inbox */
    uint8_t ack[MSG_ACK_TAG]; /* delivered: its acknowledgement tag */
};

/* k = first output of KDF2(H(label), dh || eph_pk || onion_pk). */
static int e2e_key(struct ovl_aead *a, uint8_t *ack, const uint8_t dh[OVL_X25519_LEN],
                   const uint8_t eph_pk[OVL_X25519_LEN], const uint8_t onion_pk[OVL_X25519_LEN])
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
        ovl_kdf_label(ck, k, "ovl-e2e-ack-v1");
        memcpy(ack, ck, MSG_ACK_TAG);
    }
    ovl_wipe(ikm, sizeof(ikm));
    ovl_wipe(k, sizeof(k));
    return rc;
}

int msg_seal(uint8_t **blob, size_t *blob_len, const uint8_t onion_pk[OVL_X25519_LEN],
             const uint8_t id[CLIENT_MSG_ID], const uint8_t *reply_pk, const uint8_t *m, size_t len,
             uint8_t ack[MSG_ACK_TAG])
{
    uint8_t eph_sk[OVL_X25519_LEN], dh[OVL_X25519_LEN], nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    size_t hdr = 1 + (reply_pk ? OVL_ED25519_PK : 0), total;
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
    rc = e2e_key(&a, ack, dh, b, onion_pk);
    if (rc)
        goto fail;
    b[OVL_X25519_LEN] = reply_pk ? CLIENT_F_REPLY : 0;
    if (reply_pk)
        memcpy(b + OVL_X25519_LEN + 1, reply_pk, OVL_ED25519_PK);
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
                     const uint8_t id[CLIENT_MSG_ID], const struct dir_onion *k, uint8_t *ack)
{
    uint8_t dh[OVL_X25519_LEN], nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    int rc;

    rc = ovl_x25519(dh, k->sk, blob);
    if (rc)
        return rc;
    rc = e2e_key(&a, ack, dh, blob, k->pk);
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
             uint8_t ack[MSG_ACK_TAG])
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
        rc = open_with(m, blob, blob_len, id, &keys[i], ack);
        if (rc == 0)
            break;
    }
    if (rc) {
        free(m);
        return OVL_ECRYPTO;
    }
    if (m->data[0] & ~CLIENT_F_REPLY)
        goto bad;
    hdr = 1 + ((m->data[0] & CLIENT_F_REPLY) ? OVL_ED25519_PK : 0);
    if (pt_len <= hdr) /* empty messages are never sent */
        goto bad;
    m->has_from = (m->data[0] & CLIENT_F_REPLY) != 0;
    if (m->has_from)
        memcpy(m->from, m->data + 1, OVL_ED25519_PK);
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

int msg_rx_init(struct msg_rx *rx, const struct client_opts *o, struct client_stats *st)
{
    memset(rx, 0, sizeof(*rx));
    if (!o->inbox_messages || !o->max_message || !st)
        return OVL_EINVAL;
    rx->max_message = o->max_message;
    rx->inbox_bytes_max = o->inbox_bytes;
    rx->inbox_max = o->inbox_messages;
    rx->timeout_ms = o->reassembly_timeout_ms;
    rx->st = st;
    rx->inbox = calloc(o->inbox_messages, sizeof(*rx->inbox));
    return rx->inbox ? 0 : OVL_ENOMEM;
}

static void part_free(struct msg_part *p)
{
    if (p && p->buf)
        ovl_wipe(p->buf, p->total);
    free(p);
}

/* One copy each of uthash's add and delete (they are large macros). */
static void by_id_add(struct msg_rx *rx, struct msg_part *p)
{
    HASH_ADD(hh, rx->by_id, id, CLIENT_MSG_ID, p);
}

static void by_id_del(struct msg_rx *rx, struct msg_part *p)
{
    HASH_DEL(rx->by_id, p);
}

/* Forget a tombstone entirely. */
static void dead_remove(struct msg_rx *rx, struct msg_part *p)
{
    by_id_del(rx, p);
    DL_DELETE(rx->dead, p);
    rx->n_dead--;
    part_free(p);
}

/* Drop p (live, or NULL for a message we never stored) and leave a
 * tombstone for id so its remaining fragments are ignored. Tombstones are
 * capped at inbox_max; the oldest goes first. */
static void part_kill(struct msg_rx *rx, struct msg_part *p, const uint8_t *id, uint64_t now_ms)
{
    uint8_t key[CLIENT_MSG_ID];

    if (p && !p->live)
        return;
    memcpy(key, id, CLIENT_MSG_ID); /* id may point into p */
    if (p) {
        by_id_del(rx, p);
        DL_DELETE(rx->live, p);
        rx->n_live--;
        rx->part_bytes -= p->cost;
        part_free(p);
    }
    if (rx->n_dead >= rx->inbox_max && rx->dead)
        dead_remove(rx, rx->dead);
    p = calloc(1, sizeof(*p));
    if (!p)
        return; /* a missing tombstone only lets late fragments in again */
    memcpy(p->id, key, CLIENT_MSG_ID);
    p->since_ms = now_ms;
    by_id_add(rx, p);
    DL_APPEND(rx->dead, p);
    rx->n_dead++;
}

/* Check that a fragment sits on the grid of its total. */
static bool frag_valid(const struct msg_rx *rx, uint32_t off, uint32_t total, size_t flen)
{
    uint64_t blob_max = rx->max_message + MSG_OVERHEAD_MAX;
    size_t want;

    if (total < MSG_BLOB_MIN || total > blob_max || off >= total || off % MSG_FRAG_DATA != 0)
        return false;
    want = total - off < MSG_FRAG_DATA ? total - off : MSG_FRAG_DATA;
    return flen == want;
}

/* Start reassembling id, within the caps; NULL (counted) when full. */
static struct msg_part *part_new(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], uint32_t total,
                                 uint64_t now_ms)
{
    uint32_t nfrags = (uint32_t)msg_frag_count(total);
    size_t nbits = (nfrags + 7) / 8;
    size_t cost = sizeof(struct msg_part) + nbits + total;
    struct msg_part *p;

    if (rx->n_live >= rx->inbox_max || rx->part_bytes + rx->in_bytes + cost > rx->inbox_bytes_max)
        return NULL;
    p = calloc(1, cost);
    if (!p)
        return NULL;
    memcpy(p->id, id, CLIENT_MSG_ID);
    p->live = true;
    p->since_ms = now_ms;
    p->total = total;
    p->nfrags = nfrags;
    p->cost = cost;
    p->bits = (uint8_t *)(p + 1);
    p->buf = p->bits + nbits;
    by_id_add(rx, p);
    DL_APPEND(rx->live, p);
    rx->n_live++;
    rx->part_bytes += cost;
    return p;
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

/* Put m in the inbox if the caps allow; frees it (counted) otherwise. */
static bool inbox_push(struct msg_rx *rx, struct client_msg *m)
{
    if (rx->in_count >= rx->inbox_max ||
        rx->part_bytes + rx->in_bytes + m->len > rx->inbox_bytes_max) {
        rx->st->dropped_inbox_full++;
        ovl_wipe(m->data, m->len);
        free(m);
        return false;
    }
    rx->inbox[(rx->in_head + rx->in_count) % rx->inbox_max] = m;
    rx->in_count++;
    rx->in_bytes += m->len;
    rx->st->messages_received++;
    return true;
}

/* The last fragment arrived: decrypt, deliver, leave a tombstone. */
static enum msg_rx_result part_complete(struct msg_rx *rx, struct msg_part *p,
                                        const struct dir_onion *keys, unsigned n_keys,
                                        uint64_t now_ms, uint64_t wall_ms, uint8_t *ack)
{
    struct client_msg *m = NULL;
    uint8_t tag[MSG_ACK_TAG], id[CLIENT_MSG_ID];
    int rc = msg_open(&m, p->buf, p->total, p->id, keys, n_keys, tag);

    memcpy(id, p->id, CLIENT_MSG_ID);
    part_kill(rx, p, id, now_ms); /* a tombstone also stops replays */
    if (rc == OVL_ECRYPTO) {
        rx->st->dropped_auth++;
        return MSG_RX_DROPPED;
    }
    if (rc) {
        rx->st->dropped_bad++;
        return MSG_RX_DROPPED;
    }
    m->received_ms = wall_ms;
    HASH_FIND(hh, rx->by_id, id, CLIENT_MSG_ID, p);
    /* A full inbox drops it unacknowledged and forgets it, so the sender's
     * next copy can get in once there is room. */
    if (!inbox_push(rx, m)) {
        if (p)
            dead_remove(rx, p);
        return MSG_RX_DROPPED;
    }
    if (p) {
        p->delivered = true;
        memcpy(p->ack, tag, MSG_ACK_TAG);
    }
    return ack_write(ack, id, tag);
}

enum msg_rx_result msg_rx_fragment(struct msg_rx *rx, const uint8_t *frag, size_t len,
                                   const struct dir_onion *keys, unsigned n_keys, uint64_t now_ms,
                                   uint64_t wall_ms, uint8_t ack[MSG_ACK_LEN])
{
    struct msg_part *p = NULL;
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
    HASH_FIND(hh, rx->by_id, frag, CLIENT_MSG_ID, p);
    /* A retransmission of a delivered message ends with its last fragment:
     * that one earns a fresh acknowledgement (the first may have been lost). */
    if (p && !p->live && p->delivered && total > 0 &&
        off / MSG_FRAG_DATA == (total - 1) / MSG_FRAG_DATA) {
        rx->st->duplicates++;
        return ack_write(ack, p->id, p->ack) == MSG_RX_DONE ? MSG_RX_AGAIN : MSG_RX_IGNORED;
    }
    if (p && !p->live)
        return MSG_RX_IGNORED;
    if (!frag_valid(rx, off, total, flen)) {
        rx->st->dropped_bad++;
        part_kill(rx, p, frag, now_ms);
        return MSG_RX_DROPPED;
    }
    if (p && p->total != total) {
        rx->st->dropped_reassembly++;
        part_kill(rx, p, frag, now_ms);
        return MSG_RX_DROPPED;
    }
    if (!p) {
        p = part_new(rx, frag, total, now_ms);
        if (!p) {
            rx->st->dropped_inbox_full++;
            part_kill(rx, NULL, frag, now_ms);
            return MSG_RX_DROPPED;
        }
    }
    idx = off / MSG_FRAG_DATA;
    if (p->bits[idx / 8] & (1u << (idx % 8))) {
        if (memcmp(p->buf + off, frag + MSG_FRAG_HDR, flen) == 0)
            return MSG_RX_IGNORED;
        rx->st->dropped_reassembly++;
        part_kill(rx, p, frag, now_ms);
        return MSG_RX_DROPPED;
    }
    memcpy(p->buf + off, frag + MSG_FRAG_HDR, flen);
    p->bits[idx / 8] |= (uint8_t)(1u << (idx % 8));
    if (++p->got < p->nfrags)
        return MSG_RX_PARTIAL;
    return part_complete(rx, p, keys, n_keys, now_ms, wall_ms, ack);
}

void msg_rx_expire(struct msg_rx *rx, uint64_t now_ms)
{
    /* Both lists are in time order, so stop at the first young entry. */
    while (rx->live && now_ms - rx->live->since_ms >= rx->timeout_ms) {
        rx->st->dropped_reassembly++;
        part_kill(rx, rx->live, rx->live->id, now_ms);
    }
    while (rx->dead && now_ms - rx->dead->since_ms >= rx->timeout_ms)
        dead_remove(rx, rx->dead);
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
    struct client_msg *m;

    if (!rx)
        return;
    HASH_ITER(hh, rx->by_id, p, tmp)
    {
        by_id_del(rx, p);
        part_free(p);
    }
    rx->live = rx->dead = NULL;
    rx->n_live = rx->n_dead = 0;
    rx->part_bytes = 0;
    while (rx->inbox && msg_rx_recv(rx, &m, 1) == 1) {
        ovl_wipe(m->data, m->len);
        free(m);
    }
    free(rx->inbox);
    rx->inbox = NULL;
}
