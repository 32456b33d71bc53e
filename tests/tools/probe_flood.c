/* probe_flood.c - ovl-probe dir-flood: one address block floods a bootstrap.
 *
 *   ovl-probe dir-flood HOST PORT BS_ID [--bind ADDR] [--links N]
 *                       [--register] [--chains M] [--lookups M]
 *
 * Opens N links (default 1) to the bootstrap at HOST:PORT, each under a
 * fresh identity and, with --bind, from source address ADDR (on Linux any
 * 127.x.y.z is loopback, so a test on one host can speak from another
 * address block). All stay open to the end, so that what registered stays
 * registered. Then, one request at a time, each awaiting its reply:
 *   --register  every link registers its own relay descriptor (naming
 *               ADDR:7001, private: the bootstrap must allow those);
 *   --chains M  every link asks M sets of 4 chains of length 2, FRESH;
 *   --lookups M every link looks up the bootstrap's id M times.
 * It prints "OP STATUS COUNT" for every op and reply status seen (STATUS
 * the status byte), judges nothing (the test does), and exits 0 once
 * every request was answered, 1 when one was not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/desc.h"
#include "dir/dirmsg.h"
#include "lib/clock.h"
#include "probe.h"

#define FLOOD_MAX_LINKS 64
#define FLOOD_STATUSES  8

enum flood_op { FO_REGISTER, FO_CHAIN, FO_LOOKUP, FO_OPS };

static const char *const flood_op_names[FO_OPS] = {"register", "chain", "lookup"};

struct flood {
    struct probe *links;
    unsigned n;
    uint32_t req_id;
    unsigned seen[FO_OPS][FLOOD_STATUSES + 1]; /* the last: any other status */
};

/* The request of op for link p into msg; its length. */
static size_t flood_msg(const struct flood *f, const struct probe *p, enum flood_op op,
                        uint8_t *msg)
{
    struct desc d;
    size_t len = 0;

    msg[0] = op == FO_REGISTER ? DIR_REGISTER : op == FO_CHAIN ? DIR_CHAIN : DIR_LOOKUP;
    if (op == FO_LOOKUP) {
        memcpy(msg + 1, p->peer_pk, OVL_ED25519_PK);
        return 1 + OVL_ED25519_PK;
    }
    if (op == FO_CHAIN) {
        msg[1] = 2; /* length */
        msg[2] = 0; /* backups */
        memset(msg + 3, 0, OVL_ED25519_PK);
        msg[3 + OVL_ED25519_PK] = 4; /* count */
        msg[4 + OVL_ED25519_PK] = 1; /* FRESH */
        return 5 + OVL_ED25519_PK;
    }
    memset(&d, 0, sizeof(d));
    d.flags = DESC_RELAY;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = 1;
    d.published_ms = clock_wall_ms();
    d.expires_ms = d.published_ms + 3600000;
    memcpy(d.id_pk, p->id.pk, OVL_ED25519_PK);
    ovl_random(d.onion_pk, sizeof(d.onion_pk));
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://%s:7001", p->bind ? p->bind : "127.0.0.1");
    (void)f;
    if (desc_sign(&d, &p->id, msg + 1, DESC_MAX_LEN, &len) != 0)
        return 0;
    return 1 + len;
}

/* Send op once on every link, counting each reply's status. */
static int flood_round(struct flood *f, enum flood_op op)
{
    static uint8_t rep[DIRMSG_MAX_LEN];
    uint8_t msg[1 + DESC_MAX_LEN];

    for (unsigned i = 0; i < f->n; i++) {
        size_t len = flood_msg(f, &f->links[i], op, msg), rep_len = 0;
        int rc =
            len ? probe_dir_ask(&f->links[i], ++f->req_id, msg, len, rep, sizeof(rep), &rep_len)
                : OVL_EINVAL;

        if (rc != 0 || rep_len < 2) {
            printf("%s on link %u: no answer: %s\n", flood_op_names[op], i,
                   ovl_strerror(rc ? rc : OVL_EPROTO));
            return 1;
        }
        f->seen[op][rep[1] < FLOOD_STATUSES ? rep[1] : FLOOD_STATUSES]++;
    }
    return 0;
}

/* dir-flood: open the links, then the rounds asked for. */
int mode_dir_flood(struct probe *p)
{
    struct flood f = {.n = (unsigned)p->links};
    int status = 1;

    if (f.n == 0 || f.n > FLOOD_MAX_LINKS) {
        printf("--links must be 1 to %d\n", FLOOD_MAX_LINKS);
        return 1;
    }
    f.links = calloc(f.n, sizeof(*f.links));
    if (!f.links)
        return 1;
    for (unsigned i = 0; i < f.n; i++) {
        f.links[i] = *p;
        f.links[i].fd = -1;
        if (ovl_identity_generate(&f.links[i].id) != 0 ||
            probe_open(&f.links[i], p->host, p->port, p->peer_pk) != 0) {
            printf("link %u failed\n", i);
            goto done;
        }
    }
    if (p->flood_register && flood_round(&f, FO_REGISTER) != 0)
        goto done;
    for (uint64_t k = 0; k < p->flood_chains; k++)
        if (flood_round(&f, FO_CHAIN) != 0)
            goto done;
    for (uint64_t k = 0; k < p->flood_lookups; k++)
        if (flood_round(&f, FO_LOOKUP) != 0)
            goto done;
    status = 0;
done:
    for (unsigned op = 0; op < FO_OPS; op++)
        for (unsigned s = 0; s <= FLOOD_STATUSES; s++)
            if (f.seen[op][s])
                printf("%s %u %u\n", flood_op_names[op], s, f.seen[op][s]);
    for (unsigned i = 0; i < f.n; i++) {
        probe_close(&f.links[i]);
        ovl_identity_wipe(&f.links[i].id);
    }
    free(f.links);
    return status;
}
