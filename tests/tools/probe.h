/* probe.h - what ovl-probe's modes share across its files.
 *
 * ovl-probe.c holds the link layer (connect, handshake, sealed cells) and
 * the misbehaviours on it; modes that need more room live in files of
 * their own (probe_idesc.c) and use the link through the functions below.
 * Every call is bounded by the probe's deadline (p->deadline).
 */
#ifndef OVL_TESTS_PROBE_H
#define OVL_TESTS_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cell.h"
#include "lib/crypto.h"

enum probe_mode {
    M_RANDOM,
    M_HALFWAY,
    M_OVERSIZE,
    M_HS_REPLAY,
    M_HELLO,
    M_GARBAGE,
    M_REPLAY,
    M_REORDER,
    M_TAMPER,
    M_DELIVER_FLOOD,
    M_CHAIN_TAMPER,
    M_IDESC,
    M_DIR_FLOOD,
    M_HOLD
};

/* One direction of sealed cells: key generation and next counter. */
struct probe_dir {
    uint8_t key[OVL_AEAD_KEY];
    struct ovl_aead aead;
    uint64_t epoch, ctr;
};

struct probe {
    enum probe_mode mode;
    const char *host, *port;
    uint64_t random_len;
    uint8_t peer_pk[OVL_ED25519_PK];
    uint64_t timeout_ms, rekey_cells;
    uint64_t deadline, t0; /* monotonic ms */
    int fd;
    struct ovl_identity id;
    enum ovl_aead_suite suite;
    struct probe_dir tx, rx;
    const char *bs_host, *bs_port; /* chain-tamper: the bootstrap */
    uint8_t bs_pk[OVL_ED25519_PK];
    const char *relay_key; /* idesc: a relay's identity.key file, or NULL */
    const char *bind;      /* --bind: the source address to connect from, or NULL */
    uint64_t links, flood_chains, flood_lookups; /* dir-flood: --links, --chains, --lookups */
    bool flood_register;                         /* dir-flood: --register */
    uint64_t steps;                              /* hold: --steps */
};

/* Connect to host:port expecting pk, complete the handshake, send HELLO.
 * 0 or a negative enum ovl_err (already printed). */
int probe_open(struct probe *p, const char *host, const char *port,
               const uint8_t pk[OVL_ED25519_PK]);

/* Seal and send a cell of chain chain_id with the next counter. */
int send_chain_cell(struct probe *p, uint32_t chain_id, uint8_t cmd, const uint8_t *payload,
                    uint16_t len);

/* Receive cells until one with cmd and chain_id arrives, into *c;
 * OVL_ETIMEDOUT at the deadline, OVL_ECLOSED when the peer closes. */
int recv_cmd(struct probe *p, uint8_t cmd, uint32_t chain_id, struct cell *c);

/* Send msg (len bytes) as one directory request numbered req_id and copy
 * the reply to that request (op, status, result) into out (cap bytes;
 * OVL_ETOOBIG past it, with *out_len the reply's length); replies to other
 * requests are skipped. */
int probe_dir_ask(struct probe *p, uint32_t req_id, const uint8_t *msg, size_t len, uint8_t *out,
                  size_t cap, size_t *out_len);

/* Receive and open the next cell into *c (the receive rules enforced). */
int recv_cell(struct probe *p, struct cell *c);

struct desc;
struct onion_keys;

/* Ask the bootstrap p->bs_host:p->bs_port (p->bs_pk) for relay_pk's
 * descriptor on p's connection, which is replaced by one to it. */
int lookup_relay(struct probe *p, const uint8_t relay_pk[OVL_ED25519_PK], struct desc *d);

/* Open a one-hop chain id of lifetime_s through the relay d on p's link
 * (d the exit) and wait for its SETUP_OK; k receives its keys. */
int open_chain(struct probe *p, const struct desc *d, uint32_t id, uint32_t lifetime_s,
               struct onion_keys *k);

/* hold, in probe_hold.c: links and chains held open and idle, in steps;
 * returns the exit status. */
int mode_hold(struct probe *p);

/* Close p's connection and wipe its keys (the identity stays). */
void probe_close(struct probe *p);

/* dir-flood, in probe_flood.c: many links of one address block flooding a
 * bootstrap; returns the exit status (0: every request was answered). */
int mode_dir_flood(struct probe *p);

/* idesc: DIR_IDESC requests at the bootstrap p->host:p->port (p->peer_pk),
 * one line per reply; returns the exit status (0: every reply came). */
int mode_idesc(struct probe *p);

#endif
