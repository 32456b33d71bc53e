/* test_link_timers.c - a link's liveness policy as pure decisions: what is
 * due at which time, and when to look again. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "core/link_timers.h"
#include "core/node.h"
#include "lib/bytes.h"

#include "check_main.h"

/* heartbeat 100 ms, dead after 3 misses, no idle timeout, no padding. */
static void setup(struct node *n, struct link_timers *t)
{
    memset(n, 0, sizeof(*n));
    node_opts_defaults(&n->opts);
    n->opts.heartbeat_ms = 100;
    n->opts.heartbeat_misses = 3;
    n->opts.padding_max_ms = 0;
    link_timers_init(t, 1000);
    link_timers_opened(t, n, 1000);
}

static unsigned due(struct link_timers *t, struct node *n, bool paused, uint64_t now,
                    uint64_t *next, enum link_close_reason *r)
{
    *r = LC_NONE;
    *next = 0;
    return link_timers_due(t, n, paused, now, next, r);
}

/* A PING after heartbeat_ms of sending nothing; the next look is when the
 * next one or the dead deadline is due, whichever is first. */
START_TEST(test_heartbeat)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;

    setup(&n, &t);
    ck_assert_uint_eq(due(&t, &n, false, 1040, &next, &r), 0);
    ck_assert_uint_eq(next, 60);
    ck_assert_uint_eq(due(&t, &n, false, 1100, &next, &r), LT_PING);
    ck_assert_uint_eq(next, 100);
    link_timers_sent(&t, false, 1100);
    link_timers_received(&t, 1150);
    ck_assert_uint_eq(due(&t, &n, false, 1180, &next, &r), 0);
    ck_assert_uint_eq(next, 20);
}
END_TEST

/* Dead after heartbeat_misses intervals of silence, counted; never while
 * we ourselves stopped reading; a resume restarts the window. */
START_TEST(test_dead)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;

    setup(&n, &t);
    link_timers_sent(&t, true, 1290);
    ck_assert_uint_eq(due(&t, &n, false, 1290, &next, &r), 0);
    ck_assert_uint_eq(next, 10); /* the dead deadline before the heartbeat */
    ck_assert_uint_eq(due(&t, &n, true, 1400, &next, &r) & LT_CLOSE, 0);
    link_timers_resumed(&t, 1400);
    ck_assert_uint_eq(due(&t, &n, false, 1650, &next, &r) & LT_CLOSE, 0);
    ck_assert_uint_eq(due(&t, &n, false, 1700, &next, &r), LT_CLOSE);
    ck_assert_int_eq(r, LC_DEAD);
    ck_assert_uint_eq(n.ctr.dead_detect_ms_last, 300);
    ck_assert_uint_eq(n.ctr.dead_detect_ms_max, 300);
}
END_TEST

/* Idle after idle_timeout of silence, even without heartbeats. */
START_TEST(test_idle)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;

    setup(&n, &t);
    n.opts.heartbeat_ms = 0;
    n.opts.idle_timeout_ms = 500;
    ck_assert_uint_eq(due(&t, &n, false, 1200, &next, &r), 0);
    ck_assert_uint_eq(next, 300);
    ck_assert_uint_eq(due(&t, &n, false, 1500, &next, &r), LT_CLOSE);
    ck_assert_int_eq(r, LC_IDLE);
}
END_TEST

/* A probe ends only with the PONG that echoes it; unanswered in time, the
 * link is dead and the failure counted. */
START_TEST(test_probe)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;
    uint8_t echo[8];

    setup(&n, &t);
    link_timers_probe_sent(&t, 1010, 0);
    ck_assert_uint_eq(t.probe_within, 1);
    link_timers_probe_sent(&t, 1010, 30);
    ck_assert_uint_eq(due(&t, &n, false, 1020, &next, &r), 0);
    ck_assert_uint_eq(next, 20);
    st_le64(echo, 1011);
    link_timers_pong(&t, echo, sizeof(echo)); /* not ours */
    link_timers_pong(&t, echo, 7);
    ck_assert_uint_eq(t.probe_ms, 1010);
    ck_assert_uint_eq(due(&t, &n, false, 1040, &next, &r), LT_CLOSE);
    ck_assert_int_eq(r, LC_DEAD);
    ck_assert_uint_eq(n.ctr.probes_failed, 1);
    st_le64(echo, 1010);
    link_timers_pong(&t, echo, sizeof(echo));
    ck_assert_uint_eq(t.probe_ms, 0);
    ck_assert_uint_eq(due(&t, &n, false, 1040, &next, &r) & LT_CLOSE, 0);
}
END_TEST

/* Padding after exactly the drawn quiet (here min = max = 250 ms); real
 * traffic restarts the quiet, upkeep (pings, padding) does not. */
START_TEST(test_padding)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;

    setup(&n, &t);
    n.opts.heartbeat_ms = 0;
    n.opts.padding_min_ms = n.opts.padding_max_ms = 250;
    link_timers_opened(&t, &n, 1000);
    ck_assert_uint_eq(due(&t, &n, false, 1100, &next, &r), 0);
    ck_assert_uint_eq(next, 150);
    link_timers_sent(&t, false, 1200); /* upkeep */
    ck_assert_uint_eq(due(&t, &n, false, 1250, &next, &r), LT_PAD);
    ck_assert_uint_eq(next, 250);
    link_timers_sent(&t, true, 1300); /* real */
    ck_assert_uint_eq(due(&t, &n, false, 1500, &next, &r), 0);
    ck_assert_uint_eq(next, 50);
    ck_assert_uint_eq(due(&t, &n, false, 1550, &next, &r), LT_PAD);
}
END_TEST

/* A timer that fires long after it asked to (the process was held up)
 * decides nothing: what the peer sent meanwhile is unread. Asked again
 * LT_LATE_MS later, on time, it closes a link that is really silent, and
 * keeps one whose cells arrived meanwhile. */
START_TEST(test_late_timer)
{
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next;

    setup(&n, &t);
    ck_assert_uint_eq(due(&t, &n, false, 1050, &next, &r), 0);
    ck_assert_uint_eq(next, 50); /* asks for 1100 */
    ck_assert_uint_eq(due(&t, &n, false, 5000, &next, &r), 0); /* 3.9 s late */
    ck_assert_uint_eq(next, LT_LATE_MS);
    ck_assert_uint_eq(n.ctr.dead_detect_ms_last, 0);
    link_timers_received(&t, 5010); /* the loop read the peer's PING */
    ck_assert_uint_eq(due(&t, &n, false, 5000 + LT_LATE_MS, &next, &r) & LT_CLOSE, 0);
    ck_assert_uint_eq(due(&t, &n, false, 9000, &next, &r), 0); /* late again */
    ck_assert_uint_eq(due(&t, &n, false, 9000 + LT_LATE_MS, &next, &r), LT_CLOSE);
    ck_assert_int_eq(r, LC_DEAD);
}
END_TEST

/* The padding draws follow U(min, max): a Kolmogorov-Smirnov test (p =
 * 0.01) of 2,000 draws against the uniform on 20..100 ms, taken at exactly
 * the due times (no loop, so no timer lateness distorts them). */
START_TEST(test_padding_law)
{
    enum { N = 2000, MIN = 20, MAX = 100 };
    unsigned count[MAX + 1] = {0}, below = 0;
    struct node n;
    struct link_timers t;
    enum link_close_reason r;
    uint64_t next, now = 1000;
    double d = 0;

    setup(&n, &t);
    n.opts.heartbeat_ms = 0;
    n.opts.padding_min_ms = MIN;
    n.opts.padding_max_ms = MAX;
    link_timers_opened(&t, &n, now);
    now += t.pad_gap_ms;
    for (unsigned i = 0; i < N; i++) {
        ck_assert_uint_eq(due(&t, &n, false, now, &next, &r), LT_PAD);
        ck_assert(next >= MIN && next <= MAX);
        count[next]++;
        now += next;
    }
    for (unsigned x = MIN; x <= MAX; x++) {
        double emp, law = (double)(x - MIN + 1) / (MAX - MIN + 1);

        below += count[x];
        emp = (double)below / N;
        if (fabs(emp - law) > d)
            d = fabs(emp - law);
    }
    ck_assert_msg(d < 1.628 / sqrt((double)N), "KS distance %.4f", d);
}
END_TEST

static Suite *link_timers_suite(void)
{
    Suite *s = suite_create("link_timers");
    TCase *tc = tcase_create("link_timers");

    tcase_add_test(tc, test_heartbeat);
    tcase_add_test(tc, test_dead);
    tcase_add_test(tc, test_idle);
    tcase_add_test(tc, test_probe);
    tcase_add_test(tc, test_padding);
    tcase_add_test(tc, test_late_timer);
    tcase_add_test(tc, test_padding_law);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(link_timers_suite)
