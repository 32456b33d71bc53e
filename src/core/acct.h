/* acct.h - accounting periods: [relay] max_per_day, max_per_month and
 * accounting_start (docs/CONFIG.md), after Tor's AccountingMax and
 * AccountingStart.
 *
 * A day starts start_min minutes after midnight UTC; a month starts at
 * that time on day start_mday (1..28) of each month. In each period the
 * relay counts the bytes it relays each way; once the larger of the two
 * reaches the period's maximum the period is exhausted, until the next
 * one starts (core/bw.h says what the node does meanwhile). The counts
 * outlive restarts in a small text file (acct_encode, acct_decode), which
 * gives back only the counts of periods that are still current.
 *
 * Pure code: every time is given, in wall-clock ms since the Unix epoch
 * (UTC), and times before 1970 or after 9999 count as ACCT_TIME_MAX.
 */
#ifndef OVL_CORE_ACCT_H
#define OVL_CORE_ACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define ACCT_DAY_MS   86400000ull
#define ACCT_TIME_MAX 253402300799999ull /* 9999-12-31T23:59:59.999Z */
#define ACCT_FILE_MAX 256                /* what acct_encode writes, at most */

enum acct_period { ACCT_DAY = 0, ACCT_MONTH = 1, ACCT_PERIODS };

struct acct_opts {
    uint64_t max[ACCT_PERIODS]; /* bytes a period may carry; 0 = no limit */
    uint32_t start_min;         /* minute of the day (UTC) periods start, 0..1439 */
    uint32_t start_mday;        /* day of the month months start, 1..28 (0 counts as 1) */
};

struct acct {
    struct acct_opts o;
    uint64_t start_ms[ACCT_PERIODS]; /* the current period's start; 0 before acct_roll */
    uint64_t used[ACCT_PERIODS][2];  /* bytes in, out counted in it */
};

/* Return true when o limits any period. */
static inline bool acct_on(const struct acct_opts *o)
{
    return o->max[ACCT_DAY] || o->max[ACCT_MONTH];
}

/* Return the start of the period of kind p that holds now_ms. */
uint64_t acct_start(const struct acct_opts *o, enum acct_period p, uint64_t now_ms);

/* Return the start of the period of kind p after the one starting at
 * start_ms (a value acct_start returned). */
uint64_t acct_end(const struct acct_opts *o, enum acct_period p, uint64_t start_ms);

/* Move each period on to the one holding now_ms, its counts at zero when
 * that is a later one (a clock set back keeps the current one). Return
 * bit p set for each period p that started anew. */
unsigned acct_roll(struct acct *a, uint64_t now_ms);

/* Count n bytes in direction dir (0 in, 1 out) in every period. */
static inline void acct_count(struct acct *a, unsigned dir, uint64_t n)
{
    for (unsigned p = 0; p < ACCT_PERIODS; p++)
        a->used[p][dir & 1] += n;
}

/* Return what period p counts against its maximum: the larger direction. */
static inline uint64_t acct_used(const struct acct *a, enum acct_period p)
{
    return a->used[p][0] > a->used[p][1] ? a->used[p][0] : a->used[p][1];
}

/* Start both periods afresh: the ones holding now_ms, counts at zero. */
void acct_reset(struct acct *a, uint64_t now_ms);

/* Return bit p set for each period p whose maximum is reached. */
unsigned acct_exhausted(const struct acct *a);

/* Return when every exhausted period is over (0 when none is). */
uint64_t acct_wake_ms(const struct acct *a);

/* Write a's periods as text into out (cap bytes, ACCT_FILE_MAX is
 * enough): the length, or OVL_ETOOBIG. */
int acct_encode(const struct acct *a, char *out, size_t cap) OVL_WUR;

/* Read the text acct_encode wrote (len bytes, not terminated) into a,
 * whose options are set: each period's counts are taken when the file's
 * period is the one holding now_ms under these options, else start at
 * zero; a's periods are those holding now_ms either way. 0, or
 * OVL_EPROTO for text that is not such a file (a is then as after
 * acct_roll from nothing). */
int acct_decode(struct acct *a, const uint8_t *buf, size_t len, uint64_t now_ms) OVL_WUR;

#endif
