/* test_guard.c - a client's entry guards (client/guard.c): sampling,
 * the file round trip, and the rules that keep and replace guards, with
 * the times given by the test (no waiting). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/guard.h"
#include "lib/clock.h"
#include "lib/crypto.h"
#include "check_main.h"

#define NREL 12
#define DAY  (24 * 3600 * 1000ull)
#define T0   (1700000000000ull)
#define DOWN (20 * DAY)
#define LIFE (30 * DAY)

static struct desc relays[NREL];

/* NREL relays, relay i at 10.i.0.1 (distinct /16s), all sharing suite 1. */
static void make_relays(void)
{
    memset(relays, 0, sizeof(relays));
    for (unsigned i = 0; i < NREL; i++) {
        relays[i].flags = DESC_RELAY;
        relays[i].suites = 1;
        relays[i].n_uris = 1;
        snprintf(relays[i].uris[0], sizeof(relays[i].uris[0]), "tcp://10.%u.0.1:9000", i);
        ovl_random(relays[i].id_pk, OVL_ED25519_PK);
    }
}

static void opts(struct guard_opts *o, unsigned want)
{
    memset(o, 0, sizeof(*o));
    o->want = want;
    o->down_ms = DOWN;
    o->life_ms = LIFE;
    o->distinct_subnets = true;
    o->suites = 1;
    memcpy(o->self, relays[0].id_pk, OVL_ED25519_PK); /* relay 0 is us */
}

static int relay_of(const uint8_t *pk)
{
    for (int i = 0; i < NREL; i++)
        if (memcmp(relays[i].id_pk, pk, OVL_ED25519_PK) == 0)
            return i;
    return -1;
}

/* The list without relay skip (-1: whole). */
static unsigned list_without(struct desc *out, int skip)
{
    unsigned k = 0;

    for (int i = 0; i < NREL; i++)
        if (i != skip)
            out[k++] = relays[i];
    return k;
}

START_TEST(test_sampling)
{
    struct guard_set gs;
    struct guard_opts o;
    const struct guard *u[GUARD_MAX];

    make_relays();
    opts(&o, 3);
    guard_init(&gs, &o);
    ck_assert_uint_eq(guard_usable(&gs, T0, NULL, NULL, u, GUARD_MAX), 0); /* no list yet */
    guard_update(&gs, relays, NREL, T0);
    ck_assert_uint_eq(gs.n, 3);
    ck_assert_uint_eq(gs.st.sampled, 3);
    for (unsigned i = 0; i < gs.n; i++) {
        ck_assert_int_gt(relay_of(gs.g[i].id), 0); /* a relay, never ourselves */
        ck_assert_uint_eq(gs.g[i].added_ms, T0);
        ck_assert_uint_ge(gs.g[i].expires_ms, T0 + LIFE);
        ck_assert_uint_le(gs.g[i].expires_ms, T0 + 2 * LIFE);
        for (unsigned j = 0; j < i; j++)
            ck_assert(memcmp(gs.g[i].id, gs.g[j].id, OVL_ED25519_PK) != 0);
    }
    ck_assert_uint_eq(guard_usable(&gs, T0, NULL, NULL, u, GUARD_MAX), 3);
    ck_assert_ptr_eq(u[0], &gs.g[0]);
    /* Another list: the same guards, in the same order. */
    {
        uint8_t first[OVL_ED25519_PK];

        memcpy(first, gs.g[0].id, OVL_ED25519_PK);
        guard_update(&gs, relays, NREL, T0 + DAY);
        ck_assert_uint_eq(gs.n, 3);
        ck_assert_mem_eq(gs.g[0].id, first, OVL_ED25519_PK);
        ck_assert_uint_eq(gs.st.sampled, 3);
    }
    /* A pinned last hop or a destination that is the first guard: the next. */
    ck_assert_uint_eq(guard_usable(&gs, T0, &gs.g[0].d, NULL, u, GUARD_MAX), 2);
    ck_assert_ptr_eq(u[0], &gs.g[1]);
    ck_assert_uint_eq(guard_usable(&gs, T0, NULL, gs.g[0].id, u, GUARD_MAX), 2);
    ck_assert_ptr_eq(u[0], &gs.g[1]);
    ck_assert(guard_is(&gs, gs.g[2].id));
    ck_assert(!guard_is(&gs, relays[0].id_pk));
}
END_TEST

/* A relay in a guard's subnet is never sampled beside it (subnet rule). */
START_TEST(test_sampling_subnets)
{
    struct guard_set gs;
    struct guard_opts o;

    make_relays();
    for (unsigned i = 1; i < NREL; i++) /* all but relay 1 in one /16 */
        snprintf(relays[i].uris[0], sizeof(relays[i].uris[0]), "tcp://10.%u.0.%u:9000",
                 i == 1 ? 1 : 2, i);
    opts(&o, 3);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    ck_assert_uint_eq(gs.n, 2); /* two subnets: two guards */
    o.distinct_subnets = false;
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    ck_assert_uint_eq(gs.n, 3);
}
END_TEST

START_TEST(test_file_round_trip)
{
    struct guard_set gs, back;
    struct guard_opts o;
    char buf[GUARD_FILE_MAX];
    size_t n;

    make_relays();
    opts(&o, 4);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    guard_failed(&gs, gs.g[1].id, T0 + 5);
    n = guard_encode(&gs, buf, sizeof(buf));
    ck_assert_uint_gt(n, 0);
    guard_init(&back, &o);
    ck_assert_int_eq(guard_decode(&back, (const uint8_t *)buf, n, T0 + 10), 0);
    ck_assert_uint_eq(back.n, 4);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_mem_eq(back.g[i].id, gs.g[i].id, OVL_ED25519_PK);
        ck_assert_uint_eq(back.g[i].added_ms, gs.g[i].added_ms);
        ck_assert_uint_eq(back.g[i].expires_ms, gs.g[i].expires_ms);
        ck_assert_uint_eq(back.g[i].bad_since_ms, gs.g[i].bad_since_ms);
        ck_assert_uint_eq(back.g[i].flags, 0); /* listed once a list says so */
    }
    ck_assert_uint_eq(back.g[1].bad_since_ms, T0 + 5);
    /* Past a guard's lifetime when read: left out. */
    ck_assert_int_eq(guard_decode(&back, (const uint8_t *)buf, n, gs.g[2].expires_ms), 0);
    ck_assert_uint_lt(back.n, 4);
    /* Anything else is refused whole, and the set is left as it was. */
    {
        static const char *bad[] = {
            "",
            "ovl-guards 2\n",
            "ovl-guards 1\nzz 1 2 0\n",
            "ovl-guards 1\n0101010101010101010101010101010101010101010101010101010101010101 5 4 "
            "0\n",
            "ovl-guards 1\n0101010101010101010101010101010101010101010101010101010101010101 1 9 0",
            "ovl-guards 1\n0101010101010101010101010101010101010101010101010101010101010101 1 9 0 "
            "7\n",
            "ovl-guards 1\n0101010101010101010101010101010101010101010101010101010101010101 1 9 0\n"
            "0101010101010101010101010101010101010101010101010101010101010101 1 9 0\n",
        };
        unsigned before = back.n;

        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            ck_assert_int_eq(guard_decode(&back, (const uint8_t *)bad[i], strlen(bad[i]), 0),
                             OVL_EPROTO);
        ck_assert_uint_eq(back.n, before);
    }
    /* More guards than GUARD_MAX. */
    {
        char many[GUARD_FILE_MAX];
        size_t k = (size_t)snprintf(many, sizeof(many), "ovl-guards 1\n");

        for (unsigned i = 0; i <= GUARD_MAX; i++)
            k += (size_t)snprintf(many + k, sizeof(many) - k,
                                  "%02x01010101010101010101010101010101010101010101010101010101"
                                  "010101 1 9 0\n",
                                  i);
        ck_assert_int_eq(guard_decode(&back, (const uint8_t *)many, k, 0), OVL_EPROTO);
    }
}
END_TEST

/* Written through the state file, read back by a set opened later. */
START_TEST(test_state_file)
{
    char dir[64], path[128];
    struct guard_set gs, back;
    struct guard_opts o;
    uv_loop_t loop;

    make_relays();
    opts(&o, 3);
    snprintf(dir, sizeof(dir), "/tmp/ovl-guard-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    guard_init(&gs, &o);
    ck_assert_int_eq(guard_open(&gs, &loop, dir), OVL_ENOENT);
    guard_update(&gs, relays, NREL, clock_wall_ms());
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(gs.file.writes, 1);
    guard_close(&gs);
    guard_init(&back, &o);
    ck_assert_int_eq(guard_open(&back, &loop, dir), 0);
    ck_assert_uint_eq(back.n, 3);
    ck_assert_uint_eq(back.st.loaded, 3);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_mem_eq(back.g[i].id, gs.g[i].id, OVL_ED25519_PK);
    /* The next list finds them listed: nothing new is sampled. */
    guard_update(&back, relays, NREL, clock_wall_ms());
    ck_assert_uint_eq(back.st.sampled, 0);
    ck_assert_uint_eq(back.n, 3);
    uv_run(&loop, UV_RUN_DEFAULT);
    guard_close(&back);
    /* No state directory: nothing kept, nothing read. */
    guard_init(&back, &o);
    ck_assert_int_eq(guard_open(&back, &loop, NULL), OVL_ENOENT);
    guard_update(&back, relays, NREL, T0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(back.file.writes, 0);
    guard_close(&back);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    snprintf(path, sizeof(path), "%s/guards", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Unlisted: skipped at once, kept for DOWN, replaced then; listed again
 * before that: first again. */
START_TEST(test_unlisted)
{
    struct guard_set gs;
    struct guard_opts o;
    const struct guard *u[GUARD_MAX];
    struct desc list[NREL];
    uint8_t g0[OVL_ED25519_PK], g1[OVL_ED25519_PK];
    unsigned n;

    make_relays();
    opts(&o, 3);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    memcpy(g0, gs.g[0].id, OVL_ED25519_PK);
    memcpy(g1, gs.g[1].id, OVL_ED25519_PK);
    n = list_without(list, relay_of(g0));
    guard_update(&gs, list, n, T0 + 1000);
    ck_assert_uint_eq(gs.g[0].bad_since_ms, T0 + 1000);
    ck_assert_uint_eq(guard_usable(&gs, T0 + 1000, NULL, NULL, u, GUARD_MAX), 2);
    ck_assert_mem_eq(u[0]->id, g1, OVL_ED25519_PK);
    /* Back before DOWN: good again, and first. */
    guard_update(&gs, relays, NREL, T0 + DAY);
    ck_assert_uint_eq(gs.g[0].bad_since_ms, 0);
    ck_assert_uint_eq(guard_usable(&gs, T0 + DAY, NULL, NULL, u, GUARD_MAX), 3);
    ck_assert_mem_eq(u[0]->id, g0, OVL_ED25519_PK);
    /* Gone again, now for DOWN: still held a moment before, replaced at. */
    guard_update(&gs, list, n, T0 + 2 * DAY);
    guard_update(&gs, list, n, T0 + 2 * DAY + DOWN - 1);
    ck_assert(guard_is(&gs, g0));
    guard_update(&gs, list, n, T0 + 2 * DAY + DOWN);
    ck_assert(!guard_is(&gs, g0));
    ck_assert_uint_eq(gs.st.dropped_down, 1);
    ck_assert_uint_eq(gs.n, 3);
    ck_assert_mem_eq(gs.g[0].id, g1, OVL_ED25519_PK); /* the order of the others holds */
    ck_assert_uint_eq(gs.st.sampled, 4);
}
END_TEST

/* A guard a chain could not reach waits for its retry, doubling; success
 * makes it good again; failing for DOWN replaces it. */
START_TEST(test_failing)
{
    struct guard_set gs;
    struct guard_opts o;
    const struct guard *u[GUARD_MAX];
    uint8_t g0[OVL_ED25519_PK];

    make_relays();
    opts(&o, 2);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    memcpy(g0, gs.g[0].id, OVL_ED25519_PK);
    guard_failed(&gs, g0, T0);
    ck_assert_uint_eq(guard_usable(&gs, T0 + GUARD_RETRY_MS - 1, NULL, NULL, u, 4), 1);
    ck_assert_uint_eq(guard_usable(&gs, T0 + GUARD_RETRY_MS, NULL, NULL, u, 4), 2);
    ck_assert_mem_eq(u[0]->id, g0, OVL_ED25519_PK);
    guard_failed(&gs, g0, T0 + GUARD_RETRY_MS);
    ck_assert_uint_eq(guard_usable(&gs, T0 + 3 * GUARD_RETRY_MS - 1, NULL, NULL, u, 4), 1);
    ck_assert_uint_eq(guard_usable(&gs, T0 + 3 * GUARD_RETRY_MS, NULL, NULL, u, 4), 2);
    ck_assert_uint_eq(gs.g[0].bad_since_ms, T0); /* since the first failure */
    guard_succeeded(&gs, g0);
    ck_assert_uint_eq(gs.g[0].bad_since_ms, 0);
    ck_assert_uint_eq(guard_usable(&gs, T0 + 3 * GUARD_RETRY_MS, NULL, NULL, u, 4), 2);
    /* Failing on, listed all along: replaced after DOWN all the same. */
    guard_failed(&gs, g0, T0 + DAY);
    guard_update(&gs, relays, NREL, T0 + DAY + 1);
    ck_assert_uint_eq(gs.g[0].bad_since_ms, T0 + DAY); /* a listing does not clear a failure */
    guard_update(&gs, relays, NREL, T0 + DAY + DOWN);
    ck_assert(!guard_is(&gs, g0));
    ck_assert_uint_eq(gs.n, 2);
    /* The retry wait stops doubling at GUARD_RETRY_MAX. */
    for (unsigned i = 0; i < 20; i++)
        guard_failed(&gs, gs.g[0].id, T0);
    ck_assert_uint_eq(gs.g[0].retry_ms, T0 + GUARD_RETRY_MAX);
}
END_TEST

/* At the end of its lifetime a guard is replaced, good or not. */
START_TEST(test_lifetime)
{
    struct guard_set gs;
    struct guard_opts o;
    uint64_t end;

    make_relays();
    opts(&o, 3);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    end = gs.g[1].expires_ms;
    for (unsigned i = 0; i < gs.n; i++)
        end = gs.g[i].expires_ms < end ? gs.g[i].expires_ms : end;
    guard_update(&gs, relays, NREL, end - 1);
    ck_assert_uint_eq(gs.st.dropped_old, 0);
    guard_update(&gs, relays, NREL, end);
    ck_assert_uint_ge(gs.st.dropped_old, 1);
    ck_assert_uint_eq(gs.n, 3);
    ck_assert_uint_eq(gs.st.sampled, 3 + gs.st.dropped_old);
}
END_TEST

/* No guard usable: the set grows, up to twice want, instead of drawing a
 * fresh first hop for each chain. */
START_TEST(test_grows_when_none_usable)
{
    struct guard_set gs;
    struct guard_opts o;
    const struct guard *u[GUARD_MAX];

    make_relays();
    opts(&o, 2);
    guard_init(&gs, &o);
    guard_update(&gs, relays, NREL, T0);
    guard_failed(&gs, gs.g[0].id, T0);
    guard_failed(&gs, gs.g[1].id, T0);
    guard_update(&gs, relays, NREL, T0 + 1);
    ck_assert_uint_eq(gs.n, 3);
    ck_assert_uint_eq(guard_usable(&gs, T0 + 1, NULL, NULL, u, GUARD_MAX), 1);
    ck_assert_ptr_eq(u[0], &gs.g[2]);
    guard_failed(&gs, gs.g[2].id, T0 + 1);
    guard_update(&gs, relays, NREL, T0 + 2);
    ck_assert_uint_eq(gs.n, 4);
    guard_failed(&gs, gs.g[3].id, T0 + 2);
    guard_update(&gs, relays, NREL, T0 + 3);
    ck_assert_uint_eq(gs.n, 4); /* the cap */
    /* Retried and good again: the first guard is first again. */
    ck_assert_uint_eq(guard_usable(&gs, T0 + GUARD_RETRY_MS + 2, NULL, NULL, u, GUARD_MAX), 4);
    ck_assert_ptr_eq(u[0], &gs.g[0]);
}
END_TEST

static Suite *guard_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_sampling);
    tcase_add_test(tc, test_sampling_subnets);
    tcase_add_test(tc, test_file_round_trip);
    tcase_add_test(tc, test_state_file);
    tcase_add_test(tc, test_unlisted);
    tcase_add_test(tc, test_failing);
    tcase_add_test(tc, test_lifetime);
    tcase_add_test(tc, test_grows_when_none_usable);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(guard_suite)
