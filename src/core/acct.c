/* acct.c - accounting periods and their file (acct.h): the Gregorian
 * calendar in UTC, written out here rather than asked of the C library,
 * whose timegm is not standard and whose mktime follows the local zone. */
#include <stdio.h>
#include <string.h>

#include "core/acct.h"

#define ACCT_MIN_MS 60000ull

static bool acct_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (y 1970..9999, m 1..12, d 1..31). */
static int64_t acct_days(int64_t y, unsigned m, unsigned d)
{
    static const uint16_t before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t p = y - 1; /* leap years before y, from year 1 on, less those before 1970 (477) */
    int64_t days = 365 * (y - 1970) + (p / 4 - p / 100 + p / 400) - 477;

    days += before[m - 1] + (int64_t)d - 1;
    if (m > 2 && acct_leap(y))
        days++;
    return days;
}

/* The year and month (1..12) of day number days. */
static void acct_civil(int64_t days, int64_t *y, unsigned *m)
{
    int64_t yy = 1970 + days * 400 / 146097; /* 146097 days in 400 years: off by one at most */

    while (yy > 1970 && acct_days(yy, 1, 1) > days)
        yy--;
    while (acct_days(yy + 1, 1, 1) <= days)
        yy++;
    *y = yy;
    *m = 12;
    while (*m > 1 && acct_days(yy, *m, 1) > days)
        (*m)--;
}

static uint64_t acct_clamp(uint64_t t)
{
    return t > ACCT_TIME_MAX ? ACCT_TIME_MAX : t;
}

/* The start of the month period of year y, month m (may be 0 or 13). */
static uint64_t acct_month_at(const struct acct_opts *o, int64_t y, int m)
{
    unsigned mday = o->start_mday ? o->start_mday : 1;

    if (m < 1) {
        y--;
        m += 12;
    } else if (m > 12) {
        y++;
        m -= 12;
    }
    if (y < 1970)
        return 0;
    return (uint64_t)acct_days(y, (unsigned)m, mday) * ACCT_DAY_MS +
           (uint64_t)o->start_min * ACCT_MIN_MS;
}

uint64_t acct_start(const struct acct_opts *o, enum acct_period p, uint64_t now_ms)
{
    uint64_t off = (uint64_t)o->start_min * ACCT_MIN_MS, at;
    int64_t y;
    unsigned m;

    now_ms = acct_clamp(now_ms);
    if (p == ACCT_DAY)
        return now_ms < off ? 0 : (now_ms - off) / ACCT_DAY_MS * ACCT_DAY_MS + off;
    acct_civil((int64_t)(now_ms / ACCT_DAY_MS), &y, &m);
    at = acct_month_at(o, y, (int)m);
    return at <= now_ms ? at : acct_month_at(o, y, (int)m - 1);
}

uint64_t acct_end(const struct acct_opts *o, enum acct_period p, uint64_t start_ms)
{
    int64_t y;
    unsigned m;

    if (p == ACCT_DAY)
        return start_ms + ACCT_DAY_MS;
    /* start_ms is on day start_mday <= 28 of its month: that month's. */
    acct_civil((int64_t)(start_ms / ACCT_DAY_MS), &y, &m);
    return acct_month_at(o, y, (int)m + 1);
}

unsigned acct_roll(struct acct *a, uint64_t now_ms)
{
    unsigned rolled = 0;

    for (unsigned p = 0; p < ACCT_PERIODS; p++) {
        uint64_t s = acct_start(&a->o, (enum acct_period)p, now_ms);

        if (a->start_ms[p] && s <= a->start_ms[p])
            continue; /* the same period, or the clock went back */
        rolled |= a->start_ms[p] ? 1u << p : 0;
        a->start_ms[p] = s;
        a->used[p][0] = a->used[p][1] = 0;
    }
    return rolled;
}

void acct_reset(struct acct *a, uint64_t now_ms)
{
    memset(a->start_ms, 0, sizeof(a->start_ms));
    memset(a->used, 0, sizeof(a->used));
    (void)acct_roll(a, now_ms);
}

unsigned acct_exhausted(const struct acct *a)
{
    unsigned bits = 0;

    for (unsigned p = 0; p < ACCT_PERIODS; p++)
        if (a->o.max[p] && acct_used(a, (enum acct_period)p) >= a->o.max[p])
            bits |= 1u << p;
    return bits;
}

uint64_t acct_wake_ms(const struct acct *a)
{
    unsigned bits = acct_exhausted(a);
    uint64_t wake = 0;

    for (unsigned p = 0; p < ACCT_PERIODS; p++) {
        uint64_t end = acct_end(&a->o, (enum acct_period)p, a->start_ms[p]);

        if ((bits & (1u << p)) && end > wake)
            wake = end;
    }
    return wake;
}

static const char *const acct_names[ACCT_PERIODS] = {"day", "month"};

int acct_encode(const struct acct *a, char *out, size_t cap)
{
    int n = snprintf(out, cap, "ovl-accounting 1\n");

    for (unsigned p = 0; p < ACCT_PERIODS && n >= 0 && (size_t)n < cap; p++)
        n += snprintf(out + n, cap - (size_t)n, "%s %llu %llu %llu\n", acct_names[p],
                      (unsigned long long)a->start_ms[p], (unsigned long long)a->used[p][0],
                      (unsigned long long)a->used[p][1]);
    return n < 0 || (size_t)n >= cap ? OVL_ETOOBIG : n;
}

/* Read a decimal of at most 19 digits at *s, then one separator sep. */
static bool acct_num(const char **s, const char *end, char sep, uint64_t *out)
{
    const char *q = *s;
    uint64_t v = 0;

    while (q < end && *q >= '0' && *q <= '9' && q - *s < 19)
        v = v * 10 + (uint64_t)(*q++ - '0');
    if (q == *s || q >= end || *q != sep)
        return false;
    *out = v;
    *s = q + 1;
    return true;
}

/* Parse "NAME START IN OUT\n" lines after the header into starts and counts. */
static bool acct_parse(const char *s, const char *end, uint64_t starts[ACCT_PERIODS],
                       uint64_t used[ACCT_PERIODS][2])
{
    static const char hdr[] = "ovl-accounting 1\n";

    if ((size_t)(end - s) < sizeof(hdr) - 1 || memcmp(s, hdr, sizeof(hdr) - 1) != 0)
        return false;
    s += sizeof(hdr) - 1;
    for (unsigned p = 0; p < ACCT_PERIODS; p++) {
        size_t nl = strlen(acct_names[p]);

        if ((size_t)(end - s) <= nl || memcmp(s, acct_names[p], nl) != 0 || s[nl] != ' ')
            return false;
        s += nl + 1;
        if (!acct_num(&s, end, ' ', &starts[p]) || !acct_num(&s, end, ' ', &used[p][0]) ||
            !acct_num(&s, end, '\n', &used[p][1]))
            return false;
    }
    return s == end;
}

int acct_decode(struct acct *a, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    uint64_t starts[ACCT_PERIODS], used[ACCT_PERIODS][2];
    bool ok = acct_parse((const char *)buf, (const char *)buf + len, starts, used);

    acct_reset(a, now_ms);
    for (unsigned p = 0; ok && p < ACCT_PERIODS; p++) {
        if (starts[p] == a->start_ms[p]) {
            a->used[p][0] = used[p][0];
            a->used[p][1] = used[p][1];
        }
    }
    return ok ? 0 : OVL_EPROTO;
}
