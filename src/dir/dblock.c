/* dblock.c - token buckets per address block, hashed by block. */
#include <stdlib.h>

#include "lib/bucket.h"
#include "lib/htab.h"
#include "dir/dblock.h"

struct dblock {
    uint64_t key;
    uint64_t tat_ms[DBLOCK_BUCKETS]; /* GCRA: each bucket is full from then on */
    UT_hash_handle hh;
};

struct dblocks {
    struct dblock *blocks;
    uint32_t n, max;
    uint64_t swept_ms; /* the last sweep of a full table */
};

/* Create an empty table. */
int dblocks_new(uint32_t max, struct dblocks **out)
{
    struct dblocks *t;

    if (!out)
        return OVL_EINVAL;
    *out = NULL;
    if (max < 1 || max > DBLOCK_MAX)
        return OVL_EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return OVL_ENOMEM;
    t->max = max;
    *out = t;
    return 0;
}

/* Free t. */
void dblocks_free(struct dblocks *t)
{
    struct dblock *b, *tmp;

    if (!t)
        return;
    HASH_ITER(hh, t->blocks, b, tmp)
    {
        HASH_DEL(t->blocks, b);
        free(b);
    }
    free(t);
}

/* Forget every block whose buckets are all full again at now. At most
 * once a second: a table full of live blocks stays full for longer, and
 * a sweep per request would cost the whole table each time. */
static void dblocks_sweep(struct dblocks *t, uint64_t now)
{
    struct dblock *b, *tmp;

    if (t->swept_ms && now - t->swept_ms < 1000)
        return;
    t->swept_ms = now;
    HASH_ITER(hh, t->blocks, b, tmp)
    {
        bool live = false;

        for (unsigned i = 0; i < DBLOCK_BUCKETS; i++)
            live |= b->tat_ms[i] > now;
        if (live)
            continue;
        HASH_DEL(t->blocks, b);
        free(b);
        t->n--;
    }
}

/* Find or make block's entry; NULL when the table is full of live blocks. */
static struct dblock *dblocks_get(struct dblocks *t, uint64_t block, uint64_t now)
{
    struct dblock *b;

    HASH_FIND(hh, t->blocks, &block, sizeof(block), b);
    if (b)
        return b;
    if (t->n >= t->max)
        dblocks_sweep(t, now);
    if (t->n >= t->max)
        return NULL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->key = block;
    HASH_ADD(hh, t->blocks, key, sizeof(b->key), b);
    if (!b->hh.tbl) {
        free(b);
        return NULL;
    }
    t->n++;
    return b;
}

/* Take a token of block's bucket. */
bool dblocks_take(struct dblocks *t, uint64_t block, enum dblock_bucket which, uint32_t rate,
                  uint32_t burst, uint64_t now_ms)
{
    struct dblock *b;

    if (!block || !rate || !t || which >= DBLOCK_BUCKETS)
        return true;
    b = dblocks_get(t, block, now_ms);
    if (!b)
        return false;
    return ovl_bucket_take(&b->tat_ms[which], rate, burst, now_ms);
}

/* Return how many blocks are held. */
uint32_t dblocks_count(const struct dblocks *t)
{
    return t ? t->n : 0;
}
