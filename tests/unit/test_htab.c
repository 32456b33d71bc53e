/* test_htab.c - the out-of-line uthash add, find and delete (lib/htab.c):
 * many items (so the buckets double several times), a handle that is not
 * first in its element, app order, and the table's own bookkeeping. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/htab.h"

#include "check_main.h"

#define N_ITEMS 5000

struct item {
    char pad[3]; /* the handle sits past the start: tbl->hho != 0 */
    uint32_t key;
    UT_hash_handle hh;
};

/* What HASH_FSCK checks: bucket counts and chains, app order links, tail. */
static void check_table(struct item *head, unsigned want)
{
    unsigned n = 0, in_bkts = 0;
    struct item *e, *tmp, *prev = NULL;

    ck_assert_uint_eq(HASH_COUNT(head), want);
    if (!head)
        return;
    UT_hash_table *tbl = head->hh.tbl;
    ck_assert_int_eq((int)tbl->hho, (int)offsetof(struct item, hh));
    for (unsigned b = 0; b < tbl->num_buckets; b++) {
        unsigned c = 0;
        UT_hash_handle *p = NULL;

        for (UT_hash_handle *h = tbl->buckets[b].hh_head; h; h = h->hh_next) {
            ck_assert_ptr_eq(h->hh_prev, p);
            ck_assert_uint_eq(h->hashv & (tbl->num_buckets - 1U), b);
            p = h;
            c++;
        }
        ck_assert_uint_eq(c, tbl->buckets[b].count);
        in_bkts += c;
    }
    ck_assert_uint_eq(in_bkts, want);
    HASH_ITER(hh, head, e, tmp)
    {
        ck_assert_ptr_eq(e->hh.prev, prev);
        prev = e;
        n++;
    }
    ck_assert_uint_eq(n, want);
    ck_assert_ptr_eq(tbl->tail, &prev->hh);
}

static struct item *find(struct item *head, uint32_t key)
{
    struct item *e;

    HASH_FIND(hh, head, &key, sizeof(key), e);
    return e;
}

START_TEST(test_one_item)
{
    struct item *head = NULL, a = {.key = 7};

    ck_assert_ptr_null(find(head, 7));
    HASH_ADD(hh, head, key, sizeof(a.key), &a);
    ck_assert_ptr_eq(head, &a);
    check_table(head, 1);
    ck_assert_ptr_eq(find(head, 7), &a);
    ck_assert_ptr_null(find(head, 8));
    HASH_DEL(head, &a); /* the last item frees the table */
    ck_assert_ptr_null(head);
}
END_TEST

START_TEST(test_many_items)
{
    struct item *items = calloc(N_ITEMS, sizeof(*items)), *head = NULL, *e, *tmp;
    unsigned i, n;

    ck_assert_ptr_nonnull(items);
    for (i = 0; i < N_ITEMS; i++) {
        items[i].key = i * 2654435761u;
        HASH_ADD(hh, head, key, sizeof(items[i].key), &items[i]);
    }
    check_table(head, N_ITEMS);
    ck_assert_uint_gt(head->hh.tbl->num_buckets, HASH_INITIAL_NUM_BUCKETS);
    i = 0;
    HASH_ITER(hh, head, e, tmp) /* app order is insertion order */
    {
        ck_assert_ptr_eq(e, &items[i++]);
    }
    for (i = 0; i < N_ITEMS; i++)
        ck_assert_ptr_eq(find(head, items[i].key), &items[i]);
    ck_assert_ptr_null(find(head, 1)); /* i * step is 1 only for i = 244002641 */

    /* Delete the head, the tail and every third item. */
    HASH_DEL(head, &items[0]);
    ck_assert_ptr_eq(head, &items[1]);
    HASH_DEL(head, &items[N_ITEMS - 1]);
    n = N_ITEMS - 2;
    for (i = 3; i < N_ITEMS - 1; i += 3, n--)
        HASH_DEL(head, &items[i]);
    check_table(head, n);
    for (i = 0; i < N_ITEMS; i++) {
        bool gone = i == 0 || i == N_ITEMS - 1 || i % 3 == 0;

        ck_assert_ptr_eq(find(head, items[i].key), gone ? NULL : &items[i]);
    }
    HASH_ITER(hh, head, e, tmp)
    {
        HASH_DEL(head, e);
    }
    ck_assert_ptr_null(head);
    free(items);
}
END_TEST

static Suite *htab_suite(void)
{
    Suite *s = suite_create("htab");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_one_item);
    tcase_add_test(tc, test_many_items);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(htab_suite)
