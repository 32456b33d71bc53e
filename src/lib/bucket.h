/* bucket.h - the token buckets every rate limit uses.
 *
 * Two kinds. ovl_bucket_take is a bucket of whole requests kept as one
 * number (GCRA): what the bootstrap's links, address blocks' requests and
 * chain draws, and the handshakes of an address block are each limited
 * by. struct ovl_tbucket is a bucket of bytes: what the node's and the
 * relay's bandwidth limits are (core/bw.h).
 */
#ifndef OVL_LIB_BUCKET_H
#define OVL_LIB_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Take a token at now (ms) if there is one: true and *tat moved on, or
 * false and *tat untouched. rate must be at least 1.
 *
 * *tat is the time from which the bucket is full again (0: full). A
 * token comes every 1000 / rate ms (1 ms at most rates above 1000); at
 * most burst are held (0 counts as 1). */
static inline bool ovl_bucket_take(uint64_t *tat, uint32_t rate, uint32_t burst, uint64_t now)
{
    uint64_t step = 1000 / rate ? 1000 / rate : 1;
    uint64_t t = *tat > now ? *tat : now;

    if (t - now > step * (burst ? burst - 1 : 0))
        return false;
    *tat = t + step;
    return true;
}

/* ---- a bucket of bytes ----
 *
 * Tokens are bytes and come at rate bytes per second, computed from the
 * time the caller gives (the loop's cached clock: no clock read here), at
 * most burst held. A charge is taken whole even when it overdraws the
 * bucket: what was read cannot be unread, so the bucket owes it (tokens
 * below 0) and its owner waits until the debt is paid. Rate 0 is no limit:
 * charges change nothing and the bucket is never empty.
 *
 * Time that runs backward adds nothing (the next refill counts from the
 * earlier time); a gap of any length fills the bucket at most. Rates and
 * bursts are capped at OVL_TB_MAX and debts at as much, so that no sum
 * or product overflows whatever the inputs. */
#define OVL_TB_MAX ((uint64_t)1 << 40) /* 1 TiB (per second) */

struct ovl_tbucket {
    int64_t tokens;   /* bytes; below 0 what is owed */
    uint64_t rate;    /* bytes per second; 0 = no limit */
    uint64_t burst;   /* most tokens held, at least 1 (0 with no limit) */
    uint64_t last_ms; /* when the tokens were last counted */
    uint32_t part;    /* thousandths of a byte carried to the next refill */
};

/* Add the tokens earned from b->last_ms to now. */
static inline void ovl_tb_refill(struct ovl_tbucket *b, uint64_t now)
{
    uint64_t dt, need, add;

    if (!b->rate)
        return;
    if (now <= b->last_ms) {
        b->last_ms = now; /* backward: nothing earned, count from here */
        return;
    }
    dt = now - b->last_ms;
    b->last_ms = now;
    if (b->tokens >= (int64_t)b->burst) {
        b->part = 0;
        return;
    }
    need = (uint64_t)((int64_t)b->burst - b->tokens); /* at most 2 * OVL_TB_MAX */
    /* Full after need * 1000 thousandths; past that the product below
     * could overflow, and the answer is "full" anyway. */
    if (dt >= (need * 1000 - b->part) / b->rate + 1) {
        b->tokens = (int64_t)b->burst;
        b->part = 0;
        return;
    }
    add = dt * b->rate + b->part; /* < need * 1000 + rate */
    b->tokens += (int64_t)(add / 1000);
    b->part = (uint32_t)(add % 1000);
    if (b->tokens >= (int64_t)b->burst) {
        b->tokens = (int64_t)b->burst;
        b->part = 0;
    }
}

/* Set rate and burst at now (burst 0: one second of rate), keeping the
 * tokens earned so far within the new burst; a bucket that had no limit
 * starts full. */
static inline void ovl_tb_set(struct ovl_tbucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
    bool was = b->rate != 0;

    ovl_tb_refill(b, now);
    b->rate = rate > OVL_TB_MAX ? OVL_TB_MAX : rate;
    burst = burst ? burst : b->rate;
    b->burst = burst > OVL_TB_MAX ? OVL_TB_MAX : burst ? burst : 1;
    if (!b->rate) {
        b->tokens = 0;
        b->part = 0;
        b->burst = 0; /* no limit holds nothing */
        return;
    }
    if (!was) {
        b->tokens = (int64_t)b->burst;
        b->part = 0;
        b->last_ms = now;
    } else if (b->tokens > (int64_t)b->burst) {
        b->tokens = (int64_t)b->burst;
    }
}

/* Take n bytes, owing what the bucket does not hold. */
static inline void ovl_tb_charge(struct ovl_tbucket *b, uint64_t n)
{
    if (!b->rate)
        return;
    n = n > OVL_TB_MAX ? OVL_TB_MAX : n;
    b->tokens -= (int64_t)n;
    if (b->tokens < -(int64_t)OVL_TB_MAX)
        b->tokens = -(int64_t)OVL_TB_MAX;
}

/* True when b owes bytes (a limited bucket below zero). */
static inline bool ovl_tb_empty(const struct ovl_tbucket *b)
{
    return b->rate && b->tokens < 0;
}

/* Return the ms from the last refill until b holds level tokens (at most
 * its burst): 0 when it does already or has no limit. */
static inline uint64_t ovl_tb_wait_ms(const struct ovl_tbucket *b, uint64_t level)
{
    uint64_t need;

    level = level > b->burst ? b->burst : level;
    if (!b->rate || b->tokens >= (int64_t)level)
        return 0;
    need = (uint64_t)((int64_t)level - b->tokens) * 1000 - b->part;
    return (need + b->rate - 1) / b->rate;
}

#endif
