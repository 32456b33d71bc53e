/* admit.c - per address block accounting of inbound links and handshakes,
 * and the message-1 replay filter. */
#include <stdlib.h>
#include <string.h>

#include "lib/bucket.h"
#include "lib/clock.h"
#include "lib/htab.h"
#include "lib/uri.h"
#include "core/admit.h"
#include "core/node.h"

struct admit_block {
    admit_key key;
    uint32_t inbound; /* inbound links from the block now */
    uint64_t tat_ms;  /* token bucket as GCRA: the bucket is full from then on */
    UT_hash_handle hh;
};

admit_key admit_block_of(const char *uri)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;

    if (uri_parse(&u, uri) != 0 || uri_sockaddr(&u, &ss) != 0)
        return 0;
    return uri_addr_block((const struct sockaddr *)&ss);
}

static struct admit_block *block_find(struct admit *a, admit_key k)
{
    struct admit_block *b = NULL;

    HASH_FIND(hh, a->blocks, &k, sizeof(k), b);
    return b;
}

/* A block that holds no link and whose bucket is full again is forgotten. */
static void block_maybe_free(struct admit *a, struct admit_block *b, uint64_t now)
{
    if (b->inbound || b->tat_ms > now)
        return;
    HASH_DEL(a->blocks, b);
    a->n_blocks--;
    free(b);
}

/* Find or make k's entry; NULL when the table is full of live blocks. */
static struct admit_block *block_get(struct admit *a, admit_key k, uint64_t now)
{
    struct admit_block *b = block_find(a, k), *tmp;

    if (b)
        return b;
    if (a->n_blocks >= ADMIT_MAX_BLOCKS) {
        HASH_ITER(hh, a->blocks, b, tmp)
        {
            block_maybe_free(a, b, now);
        }
        if (a->n_blocks >= ADMIT_MAX_BLOCKS)
            return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->key = k;
    HASH_ADD(hh, a->blocks, key, sizeof(b->key), b);
    if (!b->hh.tbl) {
        free(b);
        return NULL;
    }
    a->n_blocks++;
    return b;
}

bool admit_inbound(struct node *n, admit_key k)
{
    struct admit_block *b;

    if (!k || !n->opts.max_links_per_block)
        return true;
    b = block_get(n->admit, k, clock_now_ms());
    if (!b || b->inbound >= n->opts.max_links_per_block) {
        n->ctr.links_limited_block++;
        return false;
    }
    b->inbound++;
    return true;
}

void admit_inbound_gone(struct node *n, admit_key k)
{
    struct admit_block *b;

    if (!k || !n->opts.max_links_per_block || !(b = block_find(n->admit, k)))
        return;
    if (b->inbound)
        b->inbound--;
    block_maybe_free(n->admit, b, clock_now_ms());
}

/* The fingerprint of a message 1: the first 8 bytes of its ephemeral key,
 * random for an honest initiator (an attacker can only repeat its own or
 * recorded ones, which is what the filter refuses). */
static uint64_t eph_print(const uint8_t eph[32])
{
    uint64_t v;

    memcpy(&v, eph, sizeof(v));
    return v;
}

static bool seen_has(const struct admit *a, uint64_t fp)
{
    for (uint32_t i = 0; i < a->seen_count; i++)
        if (a->seen[i] == fp)
            return true;
    return false;
}

int admit_handshake(struct node *n, admit_key k, const uint8_t eph[32])
{
    struct admit *a = n->admit;
    uint64_t now = clock_now_ms();

    if (a->seen && seen_has(a, eph_print(eph))) {
        n->ctr.hs_replays++;
        return OVL_EEXIST;
    }
    if (k && n->opts.hs_rate_per_block) {
        struct admit_block *b = block_get(a, k, now);

        if (!b || !ovl_bucket_take(&b->tat_ms, n->opts.hs_rate_per_block,
                                   n->opts.hs_burst_per_block, now)) {
            n->ctr.hs_limited++;
            return OVL_EAGAIN;
        }
    }
    return 0;
}

void admit_handshake_seen(struct node *n, const uint8_t eph[32])
{
    struct admit *a = n->admit;

    if (!a->seen && !(a->seen = calloc(ADMIT_SEEN, sizeof(*a->seen))))
        return; /* no memory: no filter, the rate limit still holds */
    a->seen[a->seen_next] = eph_print(eph);
    a->seen_next = (a->seen_next + 1) % ADMIT_SEEN;
    if (a->seen_count < ADMIT_SEEN)
        a->seen_count++;
}

int admit_init(struct node *n)
{
    n->admit = calloc(1, sizeof(*n->admit));
    return n->admit ? 0 : OVL_ENOMEM;
}

void admit_free(struct node *n)
{
    struct admit_block *b, *tmp;

    if (!n->admit)
        return;
    HASH_ITER(hh, n->admit->blocks, b, tmp)
    {
        HASH_DEL(n->admit->blocks, b);
        free(b);
    }
    free(n->admit->seen);
    free(n->admit);
    n->admit = NULL;
}
