/* test_acct.c - accounting periods (core/acct.c): day and month starts
 * and rollovers in UTC against the C library's calendar, the counts and
 * when a period is spent, the file's text, and the counts kept across a
 * restart of the node's bandwidth module (core/bw.c) in a data directory. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/acct.h"
#include "core/bw.h"
#include "lib/clock.h"

#include "check_main.h"

#define MIN_MS 60000ull

static uint64_t utc(int y, int m, int d, int hh, int mm)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hh, .tm_min = mm};

    return (uint64_t)timegm(&tm) * 1000;
}

START_TEST(test_day)
{
    struct acct_opts o = {.start_min = 0};

    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, 1710082800000ull),
                      1710028800000ull); /* 2024-03-10 */
    ck_assert_uint_eq(acct_end(&o, ACCT_DAY, 1710028800000ull), 1710115200000ull);
    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, 1710028800000ull),
                      1710028800000ull); /* on the edge */
    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, 1710028799999ull), 1710028800000ull - ACCT_DAY_MS);
    /* Days that start at 01:30: 00:45 is still the day before's. */
    o.start_min = 90;
    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, utc(2024, 3, 10, 0, 45)), utc(2024, 3, 9, 1, 30));
    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, utc(2024, 3, 10, 1, 30)), utc(2024, 3, 10, 1, 30));
    ck_assert_uint_eq(acct_start(&o, ACCT_DAY, 0), 0);
}
END_TEST

START_TEST(test_month)
{
    struct acct_opts o = {.start_mday = 1};

    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, utc(2024, 2, 15, 12, 0)), 1706745600000ull);
    ck_assert_uint_eq(acct_end(&o, ACCT_MONTH, 1706745600000ull), 1709251200000ull);
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, 1709208000000ull), 1706745600000ull); /* 02-29 */
    /* The 28th: February's is the 28th too, and early February is January's. */
    o.start_mday = 28;
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, utc(2024, 2, 10, 0, 0)), 1706400000000ull);
    ck_assert_uint_eq(acct_end(&o, ACCT_MONTH, 1706400000000ull), 1709078400000ull);
    /* Across the year, both ways. */
    o.start_mday = 15;
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, 1735689540000ull), 1734220800000ull);
    ck_assert_uint_eq(acct_end(&o, ACCT_MONTH, 1734220800000ull), 1736899200000ull);
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, 1704844800000ull), 1702598400000ull);
    /* A start time within the day moves the edge by as much. */
    o.start_min = 23 * 60;
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, utc(2024, 5, 15, 22, 59)),
                      utc(2024, 4, 15, 23, 0));
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, utc(2024, 5, 15, 23, 0)), utc(2024, 5, 15, 23, 0));
    ck_assert_uint_eq(acct_start(&o, ACCT_MONTH, 0), 0); /* before the first start */
    ck_assert_uint_le(acct_start(&o, ACCT_MONTH, UINT64_MAX), ACCT_TIME_MAX);
}
END_TEST

/* Every day from 1970 to 2200 at two times of day: the start is on the
 * configured day and minute, not after now, and the end after now is the
 * next month's. */
START_TEST(test_calendar_sweep)
{
    struct acct_opts o = {.start_min = 7 * 60 + 5, .start_mday = 3};

    for (uint64_t day = 40; day < 84000; day += 3) {
        for (uint64_t at = 0; at < ACCT_DAY_MS; at += ACCT_DAY_MS / 2 + 7 * MIN_MS) {
            uint64_t now = day * ACCT_DAY_MS + at;
            uint64_t s = acct_start(&o, ACCT_MONTH, now), e = acct_end(&o, ACCT_MONTH, s);
            time_t secs = (time_t)(s / 1000), esecs = (time_t)(e / 1000);
            struct tm tm, etm;

            ck_assert_uint_le(s, now);
            ck_assert_uint_gt(e, now);
            ck_assert_ptr_nonnull(gmtime_r(&secs, &tm));
            ck_assert_ptr_nonnull(gmtime_r(&esecs, &etm));
            ck_assert_int_eq(tm.tm_mday, 3);
            ck_assert_int_eq(tm.tm_hour * 60 + tm.tm_min, 7 * 60 + 5);
            ck_assert_int_eq(etm.tm_mday, 3);
            ck_assert_int_eq((etm.tm_year * 12 + etm.tm_mon) - (tm.tm_year * 12 + tm.tm_mon), 1);
            ck_assert_uint_eq(s, utc(tm.tm_year + 1900, tm.tm_mon + 1, 3, 7, 5));
        }
    }
}
END_TEST

START_TEST(test_roll_and_spend)
{
    struct acct a = {.o = {.max = {1000, 5000}, .start_mday = 1}};
    uint64_t now = utc(2024, 3, 10, 15, 0);

    ck_assert_uint_eq(acct_roll(&a, now), 0); /* the first periods are no rollover */
    ck_assert_uint_eq(a.start_ms[ACCT_DAY], utc(2024, 3, 10, 0, 0));
    ck_assert_uint_eq(a.start_ms[ACCT_MONTH], utc(2024, 3, 1, 0, 0));
    acct_count(&a, 0, 600);
    acct_count(&a, 1, 999);
    ck_assert_uint_eq(acct_used(&a, ACCT_DAY), 999); /* the larger direction */
    ck_assert_uint_eq(acct_exhausted(&a), 0);
    acct_count(&a, 1, 1);
    ck_assert_uint_eq(acct_exhausted(&a), 1u << ACCT_DAY);
    ck_assert_uint_eq(acct_wake_ms(&a), utc(2024, 3, 11, 0, 0));
    /* The clock set back keeps the period and its counts. */
    ck_assert_uint_eq(acct_roll(&a, utc(2024, 3, 9, 12, 0)), 0);
    ck_assert_uint_eq(acct_used(&a, ACCT_DAY), 1000);
    /* The next day: the day starts over, the month goes on. */
    ck_assert_uint_eq(acct_roll(&a, utc(2024, 3, 11, 0, 0)), 1u << ACCT_DAY);
    ck_assert_uint_eq(acct_used(&a, ACCT_DAY), 0);
    ck_assert_uint_eq(acct_used(&a, ACCT_MONTH), 1000);
    ck_assert_uint_eq(acct_exhausted(&a), 0);
    acct_count(&a, 0, 4400); /* the month: 600 + 4400 in */
    ck_assert_uint_eq(acct_exhausted(&a), (1u << ACCT_DAY) | (1u << ACCT_MONTH));
    ck_assert_uint_eq(acct_wake_ms(&a), utc(2024, 4, 1, 0, 0)); /* the later end */
    ck_assert_uint_eq(acct_roll(&a, utc(2024, 4, 1, 0, 0)), (1u << ACCT_DAY) | (1u << ACCT_MONTH));
    ck_assert_uint_eq(acct_exhausted(&a), 0);
    ck_assert_uint_eq(acct_wake_ms(&a), 0);
}
END_TEST

START_TEST(test_file_text)
{
    struct acct a = {.o = {.max = {1000, 0}, .start_min = 60, .start_mday = 5}}, b;
    uint64_t now = utc(2024, 6, 20, 10, 0);
    char text[ACCT_FILE_MAX];
    int n;

    acct_reset(&a, now);
    acct_count(&a, 0, 123456789012ull);
    acct_count(&a, 1, 7);
    n = acct_encode(&a, text, sizeof(text));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(acct_encode(&a, text, 10), OVL_ETOOBIG);
    n = acct_encode(&a, text, sizeof(text));
    b.o = a.o;
    ck_assert_int_eq(acct_decode(&b, (const uint8_t *)text, (size_t)n, now + 3600000), 0);
    ck_assert_mem_eq(b.start_ms, a.start_ms, sizeof(a.start_ms));
    ck_assert_mem_eq(b.used, a.used, sizeof(a.used));
    /* Read the next day: the day's counts are gone, the month's kept. */
    ck_assert_int_eq(acct_decode(&b, (const uint8_t *)text, (size_t)n, now + ACCT_DAY_MS), 0);
    ck_assert_uint_eq(acct_used(&b, ACCT_DAY), 0);
    ck_assert_uint_eq(acct_used(&b, ACCT_MONTH), 123456789012ull);
    /* Periods that start elsewhere now count from zero. */
    b.o.start_mday = 6;
    ck_assert_int_eq(acct_decode(&b, (const uint8_t *)text, (size_t)n, now), 0);
    ck_assert_uint_eq(acct_used(&b, ACCT_MONTH), 0);
    ck_assert_uint_eq(acct_used(&b, ACCT_DAY), 123456789012ull);
}
END_TEST

START_TEST(test_file_bad)
{
    static const char *const bad[] = {
        "",
        "ovl-accounting 2\nday 0 0 0\nmonth 0 0 0\n",
        "ovl-accounting 1\nday 0 0 0\nmonth 0 0 0",    /* no last newline */
        "ovl-accounting 1\nday 0 0 0\nmonth 0 0 0\nx", /* more after it */
        "ovl-accounting 1\nmonth 0 0 0\nday 0 0 0\n",
        "ovl-accounting 1\nday 0 0\nmonth 0 0 0\n",
        "ovl-accounting 1\nday 0 0 -1\nmonth 0 0 0\n",
        "ovl-accounting 1\nday 0 0 99999999999999999999\nmonth 0 0 0\n",
        "ovl-accounting 1\nday  0 0 0\nmonth 0 0 0\n",
        "ovl-accounting 1\nday 0 0 0\nmonth 0 0 0\n\n",
    };
    struct acct a = {.o = {.max = {1, 1}}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a.used[0][0] = 5;
        ck_assert_msg(acct_decode(&a, (const uint8_t *)bad[i], strlen(bad[i]), 1000000000000ull) ==
                          OVL_EPROTO,
                      "case %zu", i);
        ck_assert_uint_eq(a.used[0][0], 0);
        ck_assert_uint_ne(a.start_ms[ACCT_DAY], 0);
    }
}
END_TEST

/* ---- kept across a restart (bw.c with its file) ---- */

static char dir[64];

struct world {
    uv_loop_t loop;
    struct tp_env env;
    struct ovl_log log;
    struct bw bw;
};

static void world_up(struct world *w, const struct bw_opts *o)
{
    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    log_init(&w->log, "test_acct", OVL_LOG_ERROR, false);
    w->env.loop = &w->loop;
    ck_assert_int_eq(bw_init(&w->bw, &w->env, &w->log, dir), 0);
    ck_assert_int_eq(bw_apply(&w->bw, o), 0);
    ck_assert_ptr_eq(w->env.meter, &w->bw.meter);
}

/* Run the loop until the accounting tick has taken the bytes in. */
static void world_tick(struct world *w)
{
    uint64_t until = uv_now(&w->loop) + 3 * BW_ACCT_TICK;

    while (uv_now(&w->loop) < until) {
        uv_ref((uv_handle_t *)w->bw.acct_timer);
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_unref((uv_handle_t *)w->bw.acct_timer);
        if (acct_used(&w->bw.acct, ACCT_DAY) && w->bw.flags & BW_F_DORMANT)
            break;
    }
}

static void world_down(struct world *w)
{
    bw_stop(&w->bw);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* the file's write */
    bw_free(&w->bw);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
}

START_TEST(test_kept_across_restart)
{
    struct bw_opts o = {.acct = {.max = {1000000, 0}}};
    struct world w;
    char path[128];

    snprintf(dir, sizeof(dir), "/tmp/ovl-acct-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    world_up(&w, &o);
    ck_assert(!bw_dormant(&w.bw));
    for (int i = 0; i < 1000; i++)
        tp_meter_charge(w.env.meter, NULL, TPM_RELAY, TPM_OUT, BW_CELL);
    world_tick(&w);
    ck_assert_uint_eq(acct_used(&w.bw.acct, ACCT_DAY), 1000u * BW_CELL);
    ck_assert(bw_dormant(&w.bw)); /* 1,051,000 bytes: over the day's million */
    ck_assert_uint_eq(w.bw.dormant_count, 1);
    world_down(&w);

    /* A restart reads the counts back (the day is the same one unless
     * this ran across midnight UTC: then the day is new, and awake). */
    world_up(&w, &o);
    if (acct_start(&o.acct, ACCT_DAY, clock_wall_ms()) == w.bw.acct.start_ms[ACCT_DAY] &&
        w.bw.acct.used[ACCT_DAY][1]) {
        ck_assert_uint_eq(acct_used(&w.bw.acct, ACCT_DAY), 1000u * BW_CELL);
        ck_assert(bw_dormant(&w.bw));
    }
    /* A larger maximum from a reload wakes it at the next tick. */
    o.acct.max[ACCT_DAY] = 10000000;
    ck_assert_int_eq(bw_apply(&w.bw, &o), 0);
    ck_assert(!bw_dormant(&w.bw));
    /* Accounting turned off and on keeps the counts. */
    memset(&o.acct, 0, sizeof(o.acct));
    ck_assert_int_eq(bw_apply(&w.bw, &o), 0);
    o.acct.max[ACCT_DAY] = 10000000;
    ck_assert_int_eq(bw_apply(&w.bw, &o), 0);
    ck_assert_uint_eq(acct_used(&w.bw.acct, ACCT_DAY), 1000u * BW_CELL);
    world_down(&w);
    snprintf(path, sizeof(path), "%s/%s", dir, BW_ACCT_FILE);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%s.tmp", dir, BW_ACCT_FILE);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *acct_suite(void)
{
    Suite *s = suite_create("acct");
    TCase *tc = tcase_create("acct");

    tcase_add_test(tc, test_day);
    tcase_add_test(tc, test_month);
    tcase_add_test(tc, test_calendar_sweep);
    tcase_add_test(tc, test_roll_and_spend);
    tcase_add_test(tc, test_file_text);
    tcase_add_test(tc, test_file_bad);
    tcase_add_test(tc, test_kept_across_restart);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(acct_suite)
