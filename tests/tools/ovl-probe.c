/* ovl-probe.c - a deliberately misbehaving link peer for integration tests.
 *
 *   ovl-probe MODE HOST PORT [PEER_NODE_ID] [--timeout-ms N] [--rekey-cells N]
 *   ovl-probe chain-tamper HOST PORT RELAY_ID BS_HOST BS_PORT BS_ID
 *   ovl-probe idesc HOST PORT BS_ID [--relay-key FILE]
 *   ovl-probe dir-flood HOST PORT BS_ID [--bind ADDR] [--links N] [--register]
 *                       [--chains M] [--lookups M]
 *
 * chain-tamper is the one well-behaved mode: it looks the relay's onion key
 * up at the bootstrap, opens a one-hop chain through the relay at
 * HOST:PORT, and sends
 * one valid cover cell, one with a flipped bit and a replay of the first;
 * the test then reads the relay's counters. It exits 0 once the relay has
 * processed all three (a ping round trip after them).
 *
 * dir-flood, in probe_flood.c, is well-behaved too: many links of one
 * address block (--bind) registering and asking for chains and lookups,
 * each reply's status counted.
 *
 * idesc, in probe_idesc.c, is well-behaved at the link layer too: it asks
 * the bootstrap at HOST:PORT to hold inbound descriptors, good and bad,
 * and prints each answer's status (one line per request, not one in all).
 *
 * It speaks just enough of the link protocol (docs/PROTOCOL.md) to break it
 * in one chosen way, then checks that the peer closes the connection. This
 * is a test tool: plain blocking-style POSIX I/O with poll() deadlines.
 * Exit status: 0 when the expected outcome happened, 1 otherwise, 2 for a
 * usage error. One line on stdout says what happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "chain/body.h"
#include "chain/onion.h"
#include "core/cell.h"
#include "core/handshake.h"
#include "dir/desc.h"
#include "dir/dirmsg.h"
#include "lib/bytes.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "lib/err.h"
#include "probe.h"

#define PROBE_REKEY_DEFAULT (1u << 20)
#define PROBE_HALFWAY_BYTES 50
#define PROBE_OVERSIZE_TAIL 64

static const struct {
    const char *name;
    enum probe_mode mode;
    bool needs_peer;
} probe_modes[] = {
    {"random", M_RANDOM, false},
    {"halfway", M_HALFWAY, true},
    {"oversize", M_OVERSIZE, false},
    {"hs-replay", M_HS_REPLAY, true},
    {"hello", M_HELLO, true},
    {"garbage", M_GARBAGE, true},
    {"replay", M_REPLAY, true},
    {"reorder", M_REORDER, true},
    {"tamper", M_TAMPER, true},
    {"deliver-flood", M_DELIVER_FLOOD, true},
    {"chain-tamper", M_CHAIN_TAMPER, true},
    {"idesc", M_IDESC, true},
    {"dir-flood", M_DIR_FLOOD, true},
    {"hold", M_HOLD, true},
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int remaining_ms(const struct probe *p)
{
    uint64_t now = mono_ms();

    if (now >= p->deadline)
        return 0;
    return p->deadline - now > 60000 ? 60000 : (int)(p->deadline - now);
}

/* Wait for events on the socket until the deadline: 0 on time-out. */
static int probe_poll(struct probe *p, short events, short *revents)
{
    struct pollfd pfd = {.fd = p->fd, .events = events};
    int rc;

    do {
        int left = remaining_ms(p);

        if (left == 0)
            return 0;
        rc = poll(&pfd, 1, left);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    *revents = pfd.revents;
    return rc;
}

static bool is_close_errno(int e)
{
    return e == ECONNRESET || e == EPIPE || e == ECONNABORTED || e == ENOTCONN;
}

/* Read once into buf; OVL_ECLOSED at end of stream or reset, 0 with *got = 0
 * when nothing was ready. */
static int probe_read_some(struct probe *p, uint8_t *buf, size_t cap, size_t *got)
{
    ssize_t n = recv(p->fd, buf, cap, 0);

    *got = 0;
    if (n == 0)
        return OVL_ECLOSED;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return is_close_errno(errno) ? OVL_ECLOSED : -errno;
    }
    *got = (size_t)n;
    return 0;
}

/* Send all of buf. With discard, whatever the peer sends meanwhile is read
 * and dropped so that a peer blocked on writing cannot stall us. */
static int probe_send(struct probe *p, const uint8_t *buf, size_t len, bool discard)
{
    uint8_t scratch[4096];
    size_t got;

    while (len > 0) {
        short rev = 0;
        int rc = probe_poll(p, (short)(POLLOUT | (discard ? POLLIN : 0)), &rev);

        if (rc == 0)
            return OVL_ETIMEDOUT;
        if (rc < 0)
            return rc;
        if (discard && (rev & (POLLIN | POLLHUP))) {
            rc = probe_read_some(p, scratch, sizeof(scratch), &got);
            if (rc != 0)
                return rc;
        }
        if ((rev & (POLLOUT | POLLERR | POLLHUP)) == 0)
            continue;
        ssize_t n = send(p->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return is_close_errno(errno) ? OVL_ECLOSED : -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes. */
static int probe_recv(struct probe *p, uint8_t *buf, size_t len)
{
    while (len > 0) {
        short rev = 0;
        size_t got;
        int rc = probe_poll(p, POLLIN, &rev);

        if (rc == 0)
            return OVL_ETIMEDOUT;
        if (rc < 0)
            return rc;
        rc = probe_read_some(p, buf, len, &got);
        if (rc != 0)
            return rc;
        buf += got;
        len -= got;
    }
    return 0;
}

/* Send one frame with its 16-bit big-endian length prefix. */
static int send_frame(struct probe *p, const uint8_t *frame, size_t len)
{
    uint8_t buf[OVL_FRAME_LENHDR + OVL_FRAME_MAX];

    if (len > OVL_FRAME_MAX)
        return OVL_ETOOBIG;
    st_be16(buf, (uint16_t)len);
    memcpy(buf + OVL_FRAME_LENHDR, frame, len);
    return probe_send(p, buf, OVL_FRAME_LENHDR + len, false);
}

/* Receive one length-prefixed frame of at most cap bytes. */
static int recv_frame(struct probe *p, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t hdr[OVL_FRAME_LENHDR];
    int rc = probe_recv(p, hdr, sizeof(hdr));

    if (rc != 0)
        return rc;
    *len = ld_be16(hdr);
    if (*len > cap)
        return OVL_ETOOBIG;
    return probe_recv(p, buf, *len);
}

/* Keep reading and dropping until the peer closes: 0 then, else ETIMEDOUT. */
static int wait_close(struct probe *p)
{
    uint8_t scratch[4096];

    for (;;) {
        short rev = 0;
        size_t got;
        int rc = probe_poll(p, POLLIN, &rev);

        if (rc == 0)
            return OVL_ETIMEDOUT;
        if (rc < 0)
            return rc;
        rc = probe_read_some(p, scratch, sizeof(scratch), &got);
        if (rc == OVL_ECLOSED)
            return 0;
        if (rc != 0)
            return rc;
    }
}

/* Bind p->fd to the source address p->bind (port 0); -1 with errno set. */
static int probe_bind(struct probe *p, int family)
{
    struct addrinfo hints = {
        .ai_family = family, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    int rc;

    if (getaddrinfo(p->bind, "0", &hints, &res) != 0 || !res) {
        errno = EINVAL;
        return -1;
    }
    rc = bind(p->fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return rc;
}

/* Try one resolved address with a non-blocking connect bounded by the deadline. */
static int connect_one(struct probe *p, const struct addrinfo *ai)
{
    short rev = 0;
    int err = 0, rc;
    socklen_t elen = sizeof(err);

    p->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (p->fd < 0)
        return -errno;
    if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail_errno;
    /* Small frames back to back: without this Nagle holds the second one
     * until the first is acknowledged, adding ~40 ms to every run. */
    if (setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) != 0)
        goto fail_errno;
    if (p->bind && probe_bind(p, ai->ai_family) != 0)
        goto fail_errno;
    if (connect(p->fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        goto fail_errno;
    rc = probe_poll(p, POLLOUT, &rev);
    if (rc <= 0) {
        err = rc == 0 ? ETIMEDOUT : -rc;
        goto fail;
    }
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        goto fail_errno;
    if (err == 0)
        return 0;
    goto fail;
fail_errno:
    err = errno;
fail:
    close(p->fd);
    p->fd = -1;
    return -err;
}

static int probe_connect(struct probe *p)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(p->host, p->port, &hints, &res);

    if (rc != 0) {
        printf("cannot resolve %s:%s: %s\n", p->host, p->port, gai_strerror(rc));
        return OVL_EINVAL;
    }
    rc = OVL_ENOENT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(p, ai);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    if (rc != 0)
        printf("cannot connect to %s:%s: %s\n", p->host, p->port, ovl_strerror(rc));
    return rc;
}

/* Key a direction from its handshake key (the last connection's goes). */
static int dir_init(struct probe_dir *d, enum ovl_aead_suite suite, const uint8_t key[OVL_AEAD_KEY])
{
    memcpy(d->key, key, OVL_AEAD_KEY);
    d->epoch = 0;
    d->ctr = 0;
    ovl_aead_wipe(&d->aead);
    return ovl_aead_init(&d->aead, suite, d->key);
}

/* Ratchet d forward to the key generation of counter ctr. */
static int dir_key_for(struct probe *p, struct probe_dir *d, uint64_t ctr)
{
    uint64_t want = ctr / p->rekey_cells;

    if (want == d->epoch)
        return 0;
    if (want < d->epoch)
        return OVL_EINVAL; /* old keys are gone, as in the daemon */
    while (d->epoch < want) {
        ovl_kdf_label(d->key, d->key, "ovl rekey");
        d->epoch++;
    }
    ovl_aead_wipe(&d->aead);
    return ovl_aead_init(&d->aead, p->suite, d->key);
}

/* Complete the handshake as initiator and key both directions. */
static int probe_handshake(struct probe *p)
{
    struct handshake hs;
    struct hs_keys keys;
    uint8_t m1[HS_INIT_LEN], m2[OVL_FRAME_MAX];
    size_t len = 0;
    int rc = hs_start_initiator(&hs, &p->id, p->peer_pk, ovl_aead_available());
    unsigned log2 = 0;

    while (log2 < 63 && (UINT64_C(1) << log2) < p->rekey_cells)
        log2++;
    if (rc == 0)
        rc = hs_set_rekey(&hs, log2);
    if (rc == 0)
        rc = hs_write_init(&hs, m1);
    if (rc == 0)
        rc = send_frame(p, m1, sizeof(m1));
    if (rc == 0)
        rc = recv_frame(p, m2, sizeof(m2), &len);
    if (rc == 0)
        rc = hs_read_resp(&hs, m2, len, &keys);
    hs_wipe(&hs);
    if (rc != 0) {
        printf("handshake failed: %s\n", ovl_strerror(rc));
        return rc;
    }
    p->suite = keys.suite;
    p->rekey_cells = UINT64_C(1) << keys.rekey_log2; /* the agreed interval */
    rc = dir_init(&p->tx, p->suite, keys.tx);
    if (rc == 0)
        rc = dir_init(&p->rx, p->suite, keys.rx);
    hs_keys_wipe(&keys);
    if (rc != 0)
        printf("cannot key suite %s: %s\n", ovl_aead_name(p->suite), ovl_strerror(rc));
    return rc;
}

/* Seal a cell at counter ctr into frame (FRAME_CELL_LEN bytes). */
static int seal_cell(struct probe *p, uint32_t chain_id, uint8_t cmd, const uint8_t *payload,
                     uint16_t len, uint64_t ctr, uint8_t frame[FRAME_CELL_LEN])
{
    struct cell c = {.chain_id = chain_id, .cmd = cmd, .len = len};
    uint8_t raw[OVL_CELL_LEN];
    int rc;

    if (len > 0)
        memcpy(c.payload, payload, len);
    rc = cell_encode(raw, &c);
    if (rc == 0)
        rc = dir_key_for(p, &p->tx, ctr);
    if (rc == 0)
        rc = frame_seal(frame, &p->tx.aead, ctr, raw);
    ovl_wipe(raw, sizeof(raw));
    return rc;
}

/* Seal and send a cell of chain chain_id with the next counter. */
int send_chain_cell(struct probe *p, uint32_t chain_id, uint8_t cmd, const uint8_t *payload,
                    uint16_t len)
{
    uint8_t frame[FRAME_CELL_LEN];
    int rc = seal_cell(p, chain_id, cmd, payload, len, p->tx.ctr, frame);

    if (rc == 0)
        rc = send_frame(p, frame, FRAME_CELL_LEN);
    if (rc == 0)
        p->tx.ctr++;
    return rc;
}

/* Seal and send a cell with the next counter. */
static int send_cell(struct probe *p, uint8_t cmd, const uint8_t *payload, uint16_t len,
                     uint8_t frame[FRAME_CELL_LEN])
{
    int rc = seal_cell(p, 0, cmd, payload, len, p->tx.ctr, frame);

    if (rc == 0)
        rc = send_frame(p, frame, FRAME_CELL_LEN);
    if (rc == 0)
        p->tx.ctr++;
    return rc;
}

/* Receive and open the next cell, enforcing the receive rules. */
int recv_cell(struct probe *p, struct cell *c)
{
    uint8_t frame[OVL_FRAME_MAX], raw[OVL_CELL_LEN];
    size_t len = 0;
    uint64_t ctr = 0;
    int rc = recv_frame(p, frame, sizeof(frame), &len);

    if (rc == 0)
        rc = frame_counter(frame, len, &ctr);
    if (rc == 0 && ctr != p->rx.ctr)
        rc = ctr < p->rx.ctr ? OVL_EREPLAY : OVL_EPROTO;
    if (rc == 0)
        rc = dir_key_for(p, &p->rx, ctr);
    if (rc == 0)
        rc = frame_open(raw, &p->rx.aead, frame, len);
    if (rc == 0)
        rc = cell_decode(c, raw);
    if (rc == 0)
        p->rx.ctr++;
    return rc;
}

/* hello: HELLO, PING, and wait for the matching PONG. */
static int mode_hello(struct probe *p)
{
    uint8_t frame[FRAME_CELL_LEN], ping[8];
    struct cell c;
    int rc;

    ovl_random(ping, sizeof(ping));
    rc = send_cell(p, CELL_HELLO, NULL, 0, frame);
    if (rc == 0)
        rc = send_cell(p, CELL_PING, ping, sizeof(ping), frame);
    if (rc != 0) {
        printf("send failed: %s\n", ovl_strerror(rc));
        return 1;
    }
    for (;;) {
        rc = recv_cell(p, &c);
        if (rc != 0) {
            printf("no pong: %s\n", rc == OVL_ECLOSED ? "closed by peer" : ovl_strerror(rc));
            return 1;
        }
        if (c.cmd == CELL_PONG && c.chain_id == 0 && c.len == sizeof(ping) &&
            memcmp(c.payload, ping, sizeof(ping)) == 0)
            break;
        /* Anything else (padding, the peer's own pings) is not our business. */
    }
    printf("pong ok (%s, %" PRIu64 " ms)\n", ovl_aead_name(p->suite), mono_ms() - p->t0);
    return 0;
}

/* deliver-flood N: as an authenticated neighbour, N CHAIN_DELIVER cells
 * under random chain IDs with random payloads (forged fragments for a
 * destination that opened nothing), then the hello check: the peer must
 * still answer a PING on the same link. */
static int mode_deliver_flood(struct probe *p)
{
    uint8_t frame[FRAME_CELL_LEN], payload[OVL_CELL_PAYLOAD];
    int rc = send_cell(p, CELL_HELLO, NULL, 0, frame);

    for (uint64_t i = 0; rc == 0 && i < p->random_len; i++) {
        uint32_t id;

        ovl_random(&id, sizeof(id));
        ovl_random(payload, sizeof(payload));
        rc = send_chain_cell(p, id | 1, CELL_CHAIN_DELIVER, payload, sizeof(payload));
    }
    if (rc != 0) {
        printf("flood cut short: %s\n", ovl_strerror(rc));
        return 1;
    }
    return mode_hello(p);
}

/* ---- chain-tamper ---------------------------------------------------- */

/* Connect to host:port expecting pk, complete the handshake, send HELLO. */
int probe_open(struct probe *p, const char *host, const char *port,
               const uint8_t pk[OVL_ED25519_PK])
{
    uint8_t frame[FRAME_CELL_LEN];
    int rc;

    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->host = host;
    p->port = port;
    memcpy(p->peer_pk, pk, OVL_ED25519_PK);
    rc = probe_connect(p);
    if (rc == 0)
        rc = probe_handshake(p);
    if (rc == 0)
        rc = send_cell(p, CELL_HELLO, NULL, 0, frame);
    return rc;
}

/* Receive cells until one with cmd (and chain_id) arrives. */
int recv_cmd(struct probe *p, uint8_t cmd, uint32_t chain_id, struct cell *c)
{
    int rc;

    while ((rc = recv_cell(p, c)) == 0)
        if (c->cmd == cmd && c->chain_id == chain_id)
            return 0;
    return rc;
}

/* One directory request and its reply (probe.h). */
int probe_dir_ask(struct probe *p, uint32_t req_id, const uint8_t *msg, size_t len, uint8_t *out,
                  size_t cap, size_t *out_len)
{
    struct dirmsg_rx rx = {0};
    const uint8_t *rep = NULL;
    struct cell c;
    uint32_t id = 0;
    uint16_t count = 0;
    size_t rep_len = 0;
    int rc = dirmsg_fragment(&c, CELL_DIR_REQUEST, req_id, msg, len, 0, &count);

    if (rc == 0 && count != 1)
        rc = OVL_ETOOBIG;
    if (rc == 0)
        rc = send_chain_cell(p, 0, c.cmd, c.payload, c.len);
    while (rc == 0 && (rc = recv_cmd(p, CELL_DIR_REPLY, 0, &c)) == 0) {
        rc = dirmsg_rx_feed(&rx, &c, DIRMSG_MAX_LEN, &id, &rep, &rep_len);
        if (rc == 1 && id == req_id) {
            rc = rep_len <= cap ? 0 : OVL_ETOOBIG;
            if (rc == 0)
                memcpy(out, rep, rep_len);
            *out_len = rep_len;
            break;
        }
        if (rc == 1)
            rc = 0; /* a whole reply, but not to this request */
    }
    dirmsg_rx_free(&rx);
    return rc;
}

/* Ask the bootstrap for the relay's descriptor (DIR_LOOKUP). */
int lookup_relay(struct probe *p, const uint8_t relay_pk[OVL_ED25519_PK], struct desc *d)
{
    uint8_t req[1 + OVL_ED25519_PK], rep[2 + DESC_MAX_LEN];
    size_t len = 0;
    int rc = probe_open(p, p->bs_host, p->bs_port, p->bs_pk);

    req[0] = DIR_LOOKUP;
    memcpy(req + 1, relay_pk, OVL_ED25519_PK);
    if (rc == 0)
        rc = probe_dir_ask(p, 1, req, sizeof(req), rep, sizeof(rep), &len);
    if (rc == 0)
        rc = len > 2 && rep[0] == DIR_LOOKUP && rep[1] == DIR_STATUS_OK
                 ? desc_parse(d, rep + 2, len - 2)
                 : OVL_ENOENT;
    if (rc == 0 && !ovl_equal(d->id_pk, relay_pk, OVL_ED25519_PK))
        rc = OVL_EPROTO;
    if (rc != 0)
        printf("lookup at the bootstrap failed: %s\n", ovl_strerror(rc));
    return rc;
}

/* Open a one-hop chain through the relay (the exit) and wait for SETUP_OK. */
int open_chain(struct probe *p, const struct desc *d, uint32_t id, uint32_t lifetime_s,
               struct onion_keys *k)
{
    struct onion_hop_info info = {.type = ONION_HOP_EXIT, .lifetime_s = lifetime_s};
    uint8_t hdr[ONION_HDR_LEN], body[ONION_BODY];
    uint64_t back_next = 0;
    unsigned origin = 0;
    struct cell c;
    int rc;

    info.suite = (uint8_t)ovl_aead_pick(d->suites & ovl_aead_available());
    rc = onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])d->onion_pk, &info, 1, k);
    if (rc == 0)
        rc = send_chain_cell(p, id, CELL_CHAIN_SETUP, hdr, ONION_HDR_LEN);
    if (rc == 0)
        rc = recv_cmd(p, CELL_CHAIN_BACK, id, &c);
    if (rc == 0 && c.len != OVL_CELL_PAYLOAD)
        rc = OVL_EPROTO;
    if (rc == 0)
        rc = onion_back_unwrap(body, &origin, k, 1, &back_next, c.payload);
    if (rc == 0 && body[0] != BODY_SETUP_OK)
        rc = OVL_EPROTO;
    if (rc != 0)
        printf("chain setup failed: %s\n", ovl_strerror(rc));
    return rc;
}

/* chain-tamper: a valid cover cell, a flipped one, a replay, then a ping. */
static int mode_chain_tamper(struct probe *p)
{
    uint8_t relay_pk[OVL_ED25519_PK], body[ONION_BODY], good[OVL_CELL_PAYLOAD],
        bad[OVL_CELL_PAYLOAD], ping[8];
    const uint32_t id = UINT32_C(0x80000001); /* we dial: our IDs have the top bit */
    const uint64_t ctr0 = 0, ctr1 = 1;
    struct onion_keys k;
    struct desc d;
    struct cell c;
    int rc;

    const char *host = p->host, *port = p->port;

    memcpy(relay_pk, p->peer_pk, sizeof(relay_pk));
    if (lookup_relay(p, relay_pk, &d) != 0 || probe_open(p, host, port, relay_pk) != 0)
        return 1;
    memset(&k, 0, sizeof(k));
    if (open_chain(p, &d, id, 60, &k) != 0) {
        onion_keys_wipe(&k);
        return 1;
    }
    memset(body, 0, sizeof(body));
    body[0] = BODY_DROP;
    ovl_random(ping, sizeof(ping));
    rc = onion_fwd_wrap(good, &k, 1, &ctr0, body);
    if (rc == 0)
        rc = onion_fwd_wrap(bad, &k, 1, &ctr1, body);
    bad[ONION_TAG + 100] ^= 0x04; /* one bit inside the ciphertext */
    if (rc == 0)
        rc = send_chain_cell(p, id, CELL_CHAIN_FWD, good, OVL_CELL_PAYLOAD);
    if (rc == 0)
        rc = send_chain_cell(p, id, CELL_CHAIN_FWD, bad, OVL_CELL_PAYLOAD);
    if (rc == 0)
        rc = send_chain_cell(p, id, CELL_CHAIN_FWD, good, OVL_CELL_PAYLOAD); /* replay */
    if (rc == 0)
        rc = send_chain_cell(p, 0, CELL_PING, ping, sizeof(ping));
    while (rc == 0 && (rc = recv_cmd(p, CELL_PONG, 0, &c)) == 0)
        if (c.len == sizeof(ping) && memcmp(c.payload, ping, sizeof(ping)) == 0)
            break;
    onion_keys_wipe(&k);
    if (rc != 0) {
        printf("chain-tamper failed: %s\n", ovl_strerror(rc));
        return 1;
    }
    printf("chain-tamper ok: sent 1 valid, 1 flipped, 1 replayed cell\n");
    return 0;
}

/* random: N random bytes where frames should be. */
static int mode_random(struct probe *p)
{
    uint8_t buf[65536];
    uint64_t left = p->random_len;

    while (left > 0) {
        size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        int rc;

        ovl_random(buf, n);
        rc = probe_send(p, buf, n, true);
        if (rc != 0)
            return rc;
        left -= n;
    }
    return 0;
}

/* halfway: announce a whole message 1, send only its first bytes, go quiet. */
static int mode_halfway(struct probe *p)
{
    struct handshake hs;
    uint8_t buf[OVL_FRAME_LENHDR + HS_INIT_LEN];
    int rc = hs_start_initiator(&hs, &p->id, p->peer_pk, ovl_aead_available());

    if (rc == 0)
        rc = hs_write_init(&hs, buf + OVL_FRAME_LENHDR);
    hs_wipe(&hs);
    if (rc != 0)
        return rc;
    st_be16(buf, HS_INIT_LEN);
    return probe_send(p, buf, OVL_FRAME_LENHDR + PROBE_HALFWAY_BYTES, true);
}

/* oversize: a length prefix far beyond OVL_FRAME_MAX, then a few bytes. */
static int mode_oversize(struct probe *p)
{
    uint8_t buf[OVL_FRAME_LENHDR + PROBE_OVERSIZE_TAIL];

    st_be16(buf, 0xffff);
    ovl_random(buf + OVL_FRAME_LENHDR, PROBE_OVERSIZE_TAIL);
    return probe_send(p, buf, sizeof(buf), true);
}

/* garbage, replay, reorder, tamper: HELLO, then one bad FRAME_CELL. */
static int mode_bad_cell(struct probe *p)
{
    uint8_t hello[FRAME_CELL_LEN], bad[FRAME_CELL_LEN], ping[8];
    int rc = send_cell(p, CELL_HELLO, NULL, 0, hello);

    if (rc != 0)
        return rc;
    ovl_random(ping, sizeof(ping));
    switch (p->mode) {
    case M_GARBAGE: /* right type and counter, so only the tag can fail */
        ovl_random(bad, sizeof(bad));
        bad[0] = FRAME_CELL;
        st_le64(bad + 1, p->tx.ctr);
        break;
    case M_REPLAY:
        memcpy(bad, hello, sizeof(bad));
        break;
    case M_REORDER:
        rc = seal_cell(p, 0, CELL_PING, ping, sizeof(ping), 5, bad); /* expected: 1 */
        break;
    case M_TAMPER: {
        uint32_t bit = ovl_random_uniform(OVL_CELL_LEN * 8);

        rc = seal_cell(p, 0, CELL_PING, ping, sizeof(ping), p->tx.ctr, bad);
        bad[FRAME_CELL_AD + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        break;
    }
    default:
        return OVL_EINVAL;
    }
    if (rc == 0)
        rc = send_frame(p, bad, sizeof(bad));
    return rc;
}

/* Send one valid message 1 and read the answer; then, on a second
 * connection, the same message 1 again, which the peer must close at
 * once without answering (a replay costs it no public-key work). */
static int mode_hs_replay(struct probe *p)
{
    struct handshake hs;
    uint8_t m1[HS_INIT_LEN], m2[OVL_FRAME_MAX];
    size_t len = 0;
    int rc = hs_start_initiator(&hs, &p->id, p->peer_pk, ovl_aead_available());

    if (rc == 0)
        rc = hs_write_init(&hs, m1);
    hs_wipe(&hs);
    if (rc == 0)
        rc = send_frame(p, m1, sizeof(m1));
    if (rc == 0)
        rc = recv_frame(p, m2, sizeof(m2), &len);
    if (rc != 0) {
        printf("first message 1 not answered: %s\n", ovl_strerror(rc));
        return rc;
    }
    close(p->fd);
    if (probe_connect(p) != 0)
        return OVL_EINVAL;
    p->t0 = mono_ms();
    rc = send_frame(p, m1, sizeof(m1));
    if (rc == 0 && recv_frame(p, m2, sizeof(m2), &len) == 0) {
        printf("the replayed message 1 was answered\n");
        return OVL_EPROTO;
    }
    return 0; /* closed (or failing) without an answer: probe_run checks the close */
}

/* Run the chosen misbehaviour and report; returns the exit status. */
static int probe_run(struct probe *p)
{
    int rc;

    if (p->mode == M_CHAIN_TAMPER)
        return mode_chain_tamper(p);
    if (p->mode == M_IDESC)
        return mode_idesc(p);
    if (p->mode == M_DIR_FLOOD)
        return mode_dir_flood(p);
    if (p->mode == M_HOLD)
        return mode_hold(p);
    if (probe_connect(p) != 0)
        return 1;
    p->t0 = mono_ms();
    if (p->mode >= M_HELLO) {
        if (probe_handshake(p) != 0)
            return 1;
        if (p->mode == M_HELLO)
            return mode_hello(p);
        if (p->mode == M_DELIVER_FLOOD)
            return mode_deliver_flood(p);
    }
    p->t0 = mono_ms();
    switch (p->mode) {
    case M_RANDOM:
        rc = mode_random(p);
        break;
    case M_HS_REPLAY:
        rc = mode_hs_replay(p);
        break;
    case M_HALFWAY:
        rc = mode_halfway(p);
        break;
    case M_OVERSIZE:
        rc = mode_oversize(p);
        break;
    default:
        rc = mode_bad_cell(p);
        break;
    }
    if (rc == 0)
        rc = wait_close(p);
    if (rc == 0 || rc == OVL_ECLOSED) {
        printf("closed by peer after %" PRIu64 " ms\n", mono_ms() - p->t0);
        return 0;
    }
    if (rc == OVL_ETIMEDOUT)
        printf("peer did not close within %" PRIu64 " ms\n", p->timeout_ms);
    else
        printf("error: %s\n", ovl_strerror(rc));
    return 1;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: ovl-probe MODE HOST PORT [PEER_NODE_ID] [--timeout-ms N] [--rekey-cells N]\n"
        "modes: random N | halfway | oversize | hs-replay | hello | garbage | replay | reorder\n"
        "       | tamper | deliver-flood N\n"
        "       chain-tamper (then BS_HOST BS_PORT BS_ID after PEER_NODE_ID)\n"
        "       idesc [--relay-key FILE] (PEER_NODE_ID: the bootstrap's)\n"
        "       dir-flood [--links N] [--register] [--chains M] [--lookups M]\n"
        "       (PEER_NODE_ID: the bootstrap's)\n"
        "       hold [--links N] [--chains M] [--steps S] (then BS_HOST BS_PORT BS_ID\n"
        "       after PEER_NODE_ID)\n"
        "any mode: --bind ADDR connects from source address ADDR\n"
        "(every mode but random and oversize needs PEER_NODE_ID)\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Fill p from argv; false for a usage error (already reported). */
static bool parse_args(struct probe *p, int argc, char **argv)
{
    const char *pos[7];
    int npos = 0, need, i;
    size_t m;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout-ms") == 0 || strcmp(argv[i], "--rekey-cells") == 0) {
            uint64_t *dst = argv[i][2] == 't' ? &p->timeout_ms : &p->rekey_cells;

            if (i + 1 >= argc || !parse_u64(argv[i + 1], dst) || *dst == 0)
                return false;
            i++;
        } else if (strcmp(argv[i], "--relay-key") == 0) {
            if (i + 1 >= argc)
                return false;
            p->relay_key = argv[++i];
        } else if (strcmp(argv[i], "--bind") == 0) {
            if (i + 1 >= argc)
                return false;
            p->bind = argv[++i];
        } else if (strcmp(argv[i], "--steps") == 0) {
            if (i + 1 >= argc || !parse_u64(argv[i + 1], &p->steps) || p->steps == 0)
                return false;
            i++;
        } else if (strcmp(argv[i], "--register") == 0) {
            p->flood_register = true;
        } else if (strcmp(argv[i], "--links") == 0 || strcmp(argv[i], "--chains") == 0 ||
                   strcmp(argv[i], "--lookups") == 0) {
            uint64_t *dst = argv[i][3] == 'i'   ? &p->links
                            : argv[i][3] == 'h' ? &p->flood_chains
                                                : &p->flood_lookups;

            if (i + 1 >= argc || !parse_u64(argv[i + 1], dst))
                return false;
            i++;
        } else if (npos < 7) {
            pos[npos++] = argv[i];
        } else {
            return false;
        }
    }
    if (npos < 1)
        return false;
    for (m = 0; m < sizeof(probe_modes) / sizeof(probe_modes[0]); m++)
        if (strcmp(pos[0], probe_modes[m].name) == 0)
            break;
    if (m == sizeof(probe_modes) / sizeof(probe_modes[0]))
        return false;
    p->mode = probe_modes[m].mode;
    if (p->relay_key && p->mode != M_IDESC)
        return false;
    i = 1;
    if ((p->mode == M_RANDOM || p->mode == M_DELIVER_FLOOD) &&
        (npos < 2 || !parse_u64(pos[i++], &p->random_len)))
        return false;
    need = i + 2 + (probe_modes[m].needs_peer ? 1 : 0) +
           (p->mode == M_CHAIN_TAMPER || p->mode == M_HOLD ? 3 : 0);
    if (npos != need && !(npos == need + 1 && !probe_modes[m].needs_peer))
        return false;
    p->host = pos[i];
    p->port = pos[i + 1];
    if (npos > i + 2 && node_id_parse(p->peer_pk, pos[i + 2]) != 0) {
        fprintf(stderr, "ovl-probe: bad node ID: %s\n", pos[i + 2]);
        return false;
    }
    if (p->mode == M_CHAIN_TAMPER || p->mode == M_HOLD) {
        p->bs_host = pos[i + 3];
        p->bs_port = pos[i + 4];
        if (node_id_parse(p->bs_pk, pos[i + 5]) != 0) {
            fprintf(stderr, "ovl-probe: bad node ID: %s\n", pos[i + 5]);
            return false;
        }
    }
    return true;
}

/* Close p's connection and wipe its keys. */
void probe_close(struct probe *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    ovl_aead_wipe(&p->tx.aead);
    ovl_aead_wipe(&p->rx.aead);
    ovl_wipe(&p->tx, sizeof(p->tx));
    ovl_wipe(&p->rx, sizeof(p->rx));
}

int main(int argc, char **argv)
{
    struct probe p = {
        .fd = -1, .timeout_ms = 10000, .rekey_cells = PROBE_REKEY_DEFAULT, .links = 1, .steps = 1};
    int status;

    if (!parse_args(&p, argc, argv)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (ovl_crypto_init() != 0 || ovl_identity_generate(&p.id) != 0) {
        printf("crypto initialisation failed\n");
        return 1;
    }
    p.deadline = mono_ms() + p.timeout_ms;
    status = probe_run(&p);
    if (p.fd >= 0)
        close(p.fd);
    ovl_identity_wipe(&p.id);
    ovl_aead_wipe(&p.tx.aead);
    ovl_aead_wipe(&p.rx.aead);
    ovl_wipe(&p.tx, sizeof(p.tx));
    ovl_wipe(&p.rx, sizeof(p.rx));
    return status;
}
