/* htab.c - uthash's add, find and delete, once, out of line (see htab.h).
 *
 * Each function is the uthash 2.3 macro of the same job (HASH_ADD_KEYPTR,
 * HASH_FIND, HASH_DELETE_HH with HASH_NONFATAL_OOM, no bloom filter)
 * written for any element type: an element is a void pointer and its
 * handle sits tbl->hho bytes into it, which is all the macros use the type
 * for. Expanded at every call site they were ~1 KB per table.
 */
#include "lib/htab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* HASH_DEL_IN_BKT: unlink hh from bucket b. */
static void htab_bkt_del(UT_hash_bucket *b, UT_hash_handle *hh)
{
    b->count--;
    if (b->hh_head == hh)
        b->hh_head = hh->hh_next;
    if (hh->hh_prev)
        hh->hh_prev->hh_next = hh->hh_next;
    if (hh->hh_next)
        hh->hh_next->hh_prev = hh->hh_prev;
}

/* HASH_EXPAND_BUCKETS: double the buckets of tbl; false when out of memory
 * (tbl is then unchanged). */
static bool htab_expand(UT_hash_table *tbl)
{
    unsigned n = tbl->num_buckets * 2U;
    UT_hash_bucket *nb = calloc(n, sizeof(*nb));

    if (!nb)
        return false;
    tbl->ideal_chain_maxlen = (tbl->num_items >> (tbl->log2_num_buckets + 1U)) +
                              (((tbl->num_items & (n - 1U)) != 0U) ? 1U : 0U);
    tbl->nonideal_items = 0;
    for (unsigned i = 0; i < tbl->num_buckets; i++) {
        UT_hash_handle *thh = tbl->buckets[i].hh_head;

        while (thh) {
            UT_hash_handle *next = thh->hh_next;
            UT_hash_bucket *b = &nb[thh->hashv & (n - 1U)];

            if (++b->count > tbl->ideal_chain_maxlen) {
                tbl->nonideal_items++;
                if (b->count > b->expand_mult * tbl->ideal_chain_maxlen)
                    b->expand_mult++;
            }
            thh->hh_prev = NULL;
            thh->hh_next = b->hh_head;
            if (b->hh_head)
                b->hh_head->hh_prev = thh;
            b->hh_head = thh;
            thh = next;
        }
    }
    free(tbl->buckets);
    tbl->num_buckets *= 2U;
    tbl->log2_num_buckets++;
    tbl->buckets = nb;
    tbl->ineff_expands = tbl->nonideal_items > (tbl->num_items >> 1) ? tbl->ineff_expands + 1U : 0U;
    if (tbl->ineff_expands > 1U)
        tbl->noexpand = 1;
    return true;
}

/* HASH_MAKE_TABLE: a new table whose first element's handle is hh, hho
 * bytes into it; NULL when out of memory. */
static UT_hash_table *htab_make(UT_hash_handle *hh, ptrdiff_t hho)
{
    UT_hash_table *tbl = calloc(1, sizeof(*tbl));

    if (!tbl)
        return NULL;
    tbl->tail = hh;
    tbl->num_buckets = HASH_INITIAL_NUM_BUCKETS;
    tbl->log2_num_buckets = HASH_INITIAL_NUM_BUCKETS_LOG2;
    tbl->hho = hho;
    tbl->signature = HASH_SIGNATURE;
    tbl->buckets = calloc(HASH_INITIAL_NUM_BUCKETS, sizeof(UT_hash_bucket));
    if (!tbl->buckets) {
        free(tbl);
        return NULL;
    }
    return tbl;
}

void *ovl_htab_delete(void *head, UT_hash_handle *del)
{
    UT_hash_table *tbl = del->tbl;

    if (!del->prev && !del->next) {
        free(tbl->buckets);
        free(tbl);
        return NULL;
    }
    if (del == tbl->tail)
        tbl->tail = HH_FROM_ELMT(tbl, del->prev);
    if (del->prev)
        HH_FROM_ELMT(tbl, del->prev)->next = del->next;
    else
        head = del->next;
    if (del->next)
        HH_FROM_ELMT(tbl, del->next)->prev = del->prev;
    htab_bkt_del(&tbl->buckets[del->hashv & (tbl->num_buckets - 1U)], del);
    tbl->num_items--;
    return head;
}

void *ovl_htab_add(void *head, void *add, UT_hash_handle *ahh, const void *key, unsigned keylen)
{
    ptrdiff_t hho = (char *)ahh - (char *)add;
    UT_hash_table *tbl;
    UT_hash_bucket *b;

    ahh->hashv = ovl_htab_hash(key, keylen);
    ahh->key = key;
    ahh->keylen = keylen;
    if (!head) {
        ahh->next = NULL;
        ahh->prev = NULL;
        ahh->tbl = tbl = htab_make(ahh, hho);
        if (!tbl)
            return NULL; /* out of memory: add stays out, ahh->tbl NULL */
        head = add;
    } else {
        tbl = ahh->tbl = ((UT_hash_handle *)((char *)head + hho))->tbl;
        ahh->next = NULL;
        ahh->prev = ELMT_FROM_HH(tbl, tbl->tail);
        tbl->tail->next = add;
        tbl->tail = ahh;
    }
    tbl->num_items++;
    b = &tbl->buckets[ahh->hashv & (tbl->num_buckets - 1U)];
    b->count++;
    ahh->hh_next = b->hh_head;
    ahh->hh_prev = NULL;
    if (b->hh_head)
        b->hh_head->hh_prev = ahh;
    b->hh_head = ahh;
    if (b->count >= (b->expand_mult + 1U) * HASH_BKT_CAPACITY_THRESH && !tbl->noexpand &&
        !htab_expand(tbl)) {
        /* Out of memory: undo the add as uthash does (bucket, then list). */
        htab_bkt_del(b, ahh);
        b->count++;
        ahh->hh_next = NULL;
        ahh->hh_prev = NULL;
        head = ovl_htab_delete(head, ahh);
        ahh->tbl = NULL;
    }
    return head;
}

void *ovl_htab_find(const UT_hash_table *tbl, const void *key, unsigned keylen)
{
    unsigned hashv = ovl_htab_hash(key, keylen);
    const UT_hash_handle *hh = tbl->buckets[hashv & (tbl->num_buckets - 1U)].hh_head;

    for (; hh; hh = hh->hh_next)
        if (hh->hashv == hashv && hh->keylen == keylen && memcmp(hh->key, key, keylen) == 0)
            return ELMT_FROM_HH(tbl, hh);
    return NULL;
}
