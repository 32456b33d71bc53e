/* test_chanmap.c - link-local chain IDs: direction bits, routing, link close. */
#include <check.h>
#include <string.h>

#include "core/chanmap.h"
#include "core/link.h"
#include "core/node.h"

#include "check_main.h"

struct rec {
    int cells, closed;
    uint32_t last_id;
    struct node *n;
    struct link *also_del; /* delete this link's slot 0x1234 from the callback */
};

static void rec_cell(void *obj, struct link *l, const struct cell *c)
{
    struct rec *r = obj;

    (void)l;
    r->cells++;
    r->last_id = c->chain_id;
}

static void rec_closed(void *obj, struct link *l, uint32_t id)
{
    struct rec *r = obj;

    (void)l;
    r->closed++;
    r->last_id = id;
    if (r->also_del)
        chanmap_del(r->n, r->also_del, 0x1234);
}

static const struct chain_owner rec_owner = {.cell = rec_cell, .link_closed = rec_closed};

static void setup(struct node *n, struct link *out, struct link *in)
{
    memset(n, 0, sizeof(*n));
    memset(out, 0, sizeof(*out));
    memset(in, 0, sizeof(*in));
    out->serial = 1;
    out->flags = LINK_F_INITIATOR; /* we dialed: our IDs have the top bit set */
    in->serial = 2;
}

/* Which IDs each end of a link may open. */
static const struct {
    bool initiator;
    uint32_t id;
    bool remote;
} dir_cases[] = {
    {true, 0x00000001, true},  {true, 0x7fffffff, true},  {true, 0x80000000, false},
    {true, 0xffffffff, false}, {false, 0x80000001, true}, {false, 0x00000001, false},
};

START_TEST(test_direction_bit)
{
    struct link l;

    memset(&l, 0, sizeof(l));
    l.flags = dir_cases[_i].initiator ? LINK_F_INITIATOR : 0;
    ck_assert(chanmap_id_is_remote(&l, dir_cases[_i].id) == dir_cases[_i].remote);
}
END_TEST

START_TEST(test_add_find_deliver)
{
    struct node n;
    struct link out, in;
    struct rec r = {0};
    struct cell c = {.cmd = CELL_CHAIN_FWD};

    setup(&n, &out, &in);
    ck_assert_int_eq(chanmap_add(&n, &out, 0x1234, &rec_owner, &r), 0);
    ck_assert_int_eq(chanmap_add(&n, &out, 0x1234, &rec_owner, &r), OVL_EEXIST);
    ck_assert_int_eq(chanmap_add(&n, &out, 0x80001234, &rec_owner, &r), OVL_EINVAL); /* ours */
    ck_assert_int_eq(chanmap_add(&n, &out, 0, &rec_owner, &r), OVL_EINVAL);
    /* The same number on another link is another chain. */
    ck_assert_int_eq(chanmap_add(&n, &in, 0x80001234, &rec_owner, &r), 0);
    ck_assert_uint_eq(chanmap_count(&n), 2);
    ck_assert_ptr_eq(chanmap_find(&n, &out, 0x1234), &r);
    ck_assert_ptr_null(chanmap_find(&n, &in, 0x1234));
    c.chain_id = 0x1234;
    ck_assert(chanmap_deliver(&n, &out, &c));
    ck_assert_int_eq(r.cells, 1);
    ck_assert(!chanmap_deliver(&n, &in, &c));
    ck_assert_int_eq(r.cells, 1);
    chanmap_del(&n, &out, 0x1234);
    chanmap_del(&n, &out, 0x1234); /* idempotent */
    ck_assert(!chanmap_deliver(&n, &out, &c));
    ck_assert_uint_eq(chanmap_count(&n), 1);
    chanmap_free(&n);
    ck_assert_uint_eq(chanmap_count(&n), 0);
}
END_TEST

START_TEST(test_alloc_side)
{
    struct node n;
    struct link out, in;
    struct rec r = {0};

    setup(&n, &out, &in);
    for (int i = 0; i < 200; i++) {
        uint32_t a, b;

        ck_assert_int_eq(chanmap_alloc(&n, &out, &rec_owner, &r, &a), 0);
        ck_assert_int_eq(chanmap_alloc(&n, &in, &rec_owner, &r, &b), 0);
        ck_assert(a & 0x80000000u);
        ck_assert(!(b & 0x80000000u) && b != 0);
        ck_assert(!chanmap_id_is_remote(&out, a));
        ck_assert(!chanmap_id_is_remote(&in, b));
    }
    ck_assert_uint_eq(chanmap_count(&n), 400);
    chanmap_free(&n);
}
END_TEST

START_TEST(test_link_closed)
{
    struct node n;
    struct link out, in;
    struct rec r = {0}, other = {0};

    setup(&n, &out, &in);
    r.n = &n;
    r.also_del = &out; /* an owner tearing down a sibling slot mid-iteration */
    ck_assert_int_eq(chanmap_add(&n, &in, 0x80000001, &rec_owner, &r), 0);
    ck_assert_int_eq(chanmap_add(&n, &in, 0x80000002, &rec_owner, &r), 0);
    ck_assert_int_eq(chanmap_add(&n, &out, 0x1234, &rec_owner, &other), 0);
    ck_assert_int_eq(chanmap_add(&n, &out, 0x5678, &rec_owner, &other), 0);
    chanmap_link_closed(&n, &in);
    ck_assert_int_eq(r.closed, 2);
    ck_assert_int_eq(other.closed, 0);
    /* r's callback deleted (out, 0x1234); (out, 0x5678) is untouched. */
    ck_assert_uint_eq(chanmap_count(&n), 1);
    ck_assert_ptr_eq(chanmap_find(&n, &out, 0x5678), &other);
    chanmap_link_closed(&n, &out);
    ck_assert_int_eq(other.closed, 1);
    ck_assert_uint_eq(other.last_id, 0x5678);
    ck_assert_uint_eq(chanmap_count(&n), 0);
}
END_TEST

static int opened;

static void rec_open(void *ctx, struct link *l, const struct cell *c)
{
    (void)ctx, (void)l, (void)c;
    opened++;
}

/* The chanmap as the dispatcher's handler for chain commands: owners
 * first, then the command's opener, else counted as chain_unknown; an
 * unregistered opener is gone and only its own registration is removed. */
START_TEST(test_route)
{
    struct node n;
    struct link out, in;
    struct rec r = {0};
    struct cell c = {.cmd = CELL_CHAIN_FIRST, .chain_id = 0x80000001};

    setup(&n, &out, &in);
    dispatch_init(&n.disp);
    ck_assert_int_eq(chanmap_register_handlers(&n), 0);
    ck_assert_int_eq(dispatch_register(&n.disp, CELL_CHAIN_LAST, rec_open, NULL), OVL_EEXIST);
    ck_assert_int_eq(chanmap_register_opener(&n, CELL_PING, rec_open, NULL), OVL_EINVAL);
    ck_assert_int_eq(chanmap_register_opener(&n, CELL_CHAIN_FIRST, rec_open, &r), 0);
    ck_assert_int_eq(chanmap_register_opener(&n, CELL_CHAIN_FIRST, rec_open, &r), OVL_EEXIST);
    ck_assert_int_eq(chanmap_add(&n, &in, 0x80000001, &rec_owner, &r), 0);
    opened = 0;
    dispatch_cell(&n.disp, &in, &c); /* owned */
    ck_assert_int_eq(r.cells, 1);
    c.chain_id = 0x80000002;
    dispatch_cell(&n.disp, &in, &c); /* unowned: the opener */
    ck_assert_int_eq(opened, 1);
    c.chain_id = 0;
    dispatch_cell(&n.disp, &in, &c); /* no chain: never the opener */
    ck_assert_uint_eq(n.ctr.chain_unknown, 1);
    chanmap_unregister_opener(&n, CELL_CHAIN_FIRST, rec_open, NULL); /* not its ctx */
    c.chain_id = 0x80000003;
    dispatch_cell(&n.disp, &in, &c);
    ck_assert_int_eq(opened, 2);
    chanmap_unregister_opener(&n, CELL_CHAIN_FIRST, rec_open, &r);
    dispatch_cell(&n.disp, &in, &c);
    ck_assert_int_eq(opened, 2);
    ck_assert_uint_eq(n.ctr.chain_unknown, 2);
    c.cmd = CELL_CHAIN_LAST;
    dispatch_cell(&n.disp, &in, &c);
    ck_assert_uint_eq(n.ctr.chain_unknown, 3);
    ck_assert_uint_eq(n.disp.unhandled, 0);
    chanmap_free(&n);
}
END_TEST

static Suite *chanmap_suite(void)
{
    Suite *s = suite_create("chanmap");
    TCase *tc = tcase_create("chanmap");

    tcase_add_loop_test(tc, test_direction_bit, 0, sizeof(dir_cases) / sizeof(dir_cases[0]));
    tcase_add_test(tc, test_add_find_deliver);
    tcase_add_test(tc, test_alloc_side);
    tcase_add_test(tc, test_link_closed);
    tcase_add_test(tc, test_route);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(chanmap_suite)
