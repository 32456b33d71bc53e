/* bw.c - the node's bandwidth limits and accounting (bw.h): the meter
 * set up from the options, the accounting tick, its file, the dormant
 * state. */
#include <stdlib.h>
#include <string.h>

#include "core/bw.h"
#include "core/timer.h"
#include "lib/clock.h"

int bw_init(struct bw *b, struct tp_env *env, const struct ovl_log *log, const char *state_dir)
{
    int rc;

    memset(b, 0, sizeof(*b));
    b->env = env;
    b->log = log;
    rc = statefile_init(&b->file, env->loop, state_dir, BW_ACCT_FILE);
    if (rc)
        return rc;
    rc = statefile_read(&b->file, ACCT_FILE_MAX, &b->saved, &b->saved_len);
    if (rc == 0)
        b->flags |= BW_F_READ;
    else if (rc != OVL_ENOENT)
        log_warn(log, "accounting: cannot read %s: %s; counting from zero", b->file.path,
                 ovl_strerror(rc));
    return 0;
}

/* Write the counts now (from the loop; the write itself is asynchronous). */
static void bw_acct_save(struct bw *b)
{
    char text[ACCT_FILE_MAX];
    int n = acct_encode(&b->acct, text, sizeof(text));

    if (n > 0 && statefile_write(&b->file, (const uint8_t *)text, (size_t)n) == 0) {
        b->flags &= ~BW_F_DIRTY;
        b->acct_saved_ms = uv_now(b->env->loop);
    }
}

/* Take the relay scope's bytes since the last tick into the periods. */
static void bw_acct_take(struct bw *b)
{
    const struct tp_meter_stats *st = &b->meter.st[TPM_RELAY];

    for (unsigned d = 0; d < 2; d++) {
        if (st->bytes[d] != b->acct_seen[d]) {
            acct_count(&b->acct, d, st->bytes[d] - b->acct_seen[d]);
            b->acct_seen[d] = st->bytes[d];
            b->flags |= BW_F_DIRTY;
        }
    }
}

/* Fall dormant or wake as the counts and the periods say, and say so. */
static void bw_acct_judge(struct bw *b, unsigned rolled)
{
    unsigned spent = acct_exhausted(&b->acct);

    if (spent && !bw_dormant(b)) {
        b->flags |= BW_F_DORMANT;
        b->dormant_count++;
        log_warn(b->log,
                 "accounting: %s's maximum relayed (%llu bytes); taking no new chains until "
                 "the period ends",
                 (spent & (1u << ACCT_DAY)) ? "the day" : "the month",
                 (unsigned long long)acct_used(&b->acct,
                                               (spent & (1u << ACCT_DAY)) ? ACCT_DAY : ACCT_MONTH));
        bw_acct_save(b);
    } else if (!spent && bw_dormant(b)) {
        b->flags &= ~BW_F_DORMANT;
        log_warn(b->log, "accounting: a new period; taking chains again");
        bw_acct_save(b);
    } else if (rolled) {
        bw_acct_save(b);
    }
}

static void bw_acct_tick(uv_timer_t *t)
{
    struct bw *b = t->data;
    unsigned rolled;

    bw_acct_take(b);
    rolled = acct_roll(&b->acct, clock_wall_ms());
    bw_acct_judge(b, rolled);
    if ((b->flags & BW_F_DIRTY) && uv_now(b->env->loop) - b->acct_saved_ms >= BW_ACCT_SAVE)
        bw_acct_save(b);
}

/* Set up the meter on first need, and point the transports at it. */
static int bw_meter_on(struct bw *b)
{
    int rc;

    if (b->flags & BW_F_METER)
        return 0;
    rc = tp_meter_init(&b->meter, b->env->loop);
    if (rc)
        return rc;
    b->flags |= BW_F_METER;
    b->env->meter = &b->meter;
    return 0;
}

/* Keep the counts as the file holds them, for accounting turned on again. */
static void bw_acct_keep(struct bw *b)
{
    char text[ACCT_FILE_MAX];
    int n = acct_encode(&b->acct, text, sizeof(text));
    uint8_t *keep = n > 0 ? malloc((size_t)n) : NULL;

    if (!keep)
        return;
    memcpy(keep, text, (size_t)n);
    free(b->saved);
    b->saved = keep;
    b->saved_len = (size_t)n;
}

/* Accounting starts (with the counts kept, from the file at first, when
 * their periods are still current), changes its periods (afresh) or its
 * maxima, or stops. */
static int bw_acct_apply(struct bw *b, const struct acct_opts *o)
{
    bool was = b->acct_timer != NULL;
    bool moved = b->acct.o.start_min != o->start_min || b->acct.o.start_mday != o->start_mday;

    if (!acct_on(o)) {
        if (was) {
            bw_acct_take(b);
            bw_acct_save(b);
            bw_acct_keep(b);
        }
        timer_close(&b->acct_timer);
        b->flags &= ~BW_F_DORMANT;
        b->acct.o = *o;
        return 0;
    }
    if (!was) {
        b->acct_timer = timer_new(b->env->loop, b);
        if (!b->acct_timer)
            return OVL_ENOMEM;
        uv_unref((uv_handle_t *)b->acct_timer);
        uv_timer_start(b->acct_timer, bw_acct_tick, BW_ACCT_TICK, BW_ACCT_TICK);
        memcpy(b->acct_seen, b->meter.st[TPM_RELAY].bytes, sizeof(b->acct_seen));
    }
    b->acct.o = *o;
    if (!was && b->saved) {
        if (acct_decode(&b->acct, b->saved, b->saved_len, clock_wall_ms()) != 0)
            log_warn(b->log, "accounting: %s is not an accounting file; counting from zero",
                     b->file.path);
    } else if (!was || moved) {
        acct_reset(&b->acct, clock_wall_ms());
    }
    bw_acct_judge(b, 0);
    return 0;
}

int bw_apply(struct bw *b, const struct bw_opts *o)
{
    bool any = o->rate[TPM_NODE] || o->rate[TPM_RELAY] || acct_on(&o->acct);
    int rc;

    if (any && (rc = bw_meter_on(b)) != 0)
        return rc;
    if (b->flags & BW_F_METER) {
        for (unsigned s = 0; s < TPM_SCOPES; s++)
            tp_meter_set(&b->meter, s, o->rate[s], o->burst[s]);
        rc = bw_acct_apply(b, &o->acct);
        if (rc)
            return rc;
    }
    b->o = *o;
    return 0;
}

uint64_t bw_cap_rate(const struct bw *b)
{
    uint64_t node = b->o.rate[TPM_NODE], relay = b->o.rate[TPM_RELAY];

    if (!node || !relay)
        return node ? node : relay;
    return node < relay ? node : relay;
}

void bw_stop(struct bw *b)
{
    if (b->acct_timer) {
        bw_acct_take(b);
        bw_acct_save(b);
    }
    timer_close(&b->acct_timer);
    if (b->flags & BW_F_METER) {
        tp_meter_close(&b->meter);
        b->env->meter = NULL;
        b->flags &= ~BW_F_METER;
    }
}

void bw_free(struct bw *b)
{
    statefile_free(&b->file);
    free(b->saved);
    b->saved = NULL;
}
