/* metrics.h - every counter and gauge of the node in the Prometheus text
 * exposition format, version 0.0.4 (docs/CONTROL.md "metrics" lists the
 * families).
 *
 * Each family is "# HELP", "# TYPE" and its samples, named ovl_...: a
 * counter ends in _total, a quantity names its unit (_bytes, _seconds),
 * and one family's samples differ by labels (reason, direction,
 * transport, role, state, result, code). Durations kept in milliseconds
 * or microseconds are written in seconds. A role's families are there
 * when the node runs it. The histograms of chain setup and message round
 * trips (lib/hist.h) have cumulative buckets (le="..."), _sum and _count.
 *
 * Served by the control command "metrics" (one line= per line) and by the
 * metrics listener (mhttp.h). Building walks the counters once and
 * allocates only the output, which grows as a kvbuf (kv_raw); the caller
 * owns it, and its err is set on failure (out of memory).
 */
#ifndef OVL_CONTROL_METRICS_H
#define OVL_CONTROL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/node.h"
#include "lib/hist.h"
#include "lib/kvmsg.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct control;

/* Append the exposition of n, and of its control server c (its counters
 * and those of its metrics listener; NULL leaves them out), to out. */
void metrics_build(struct kvbuf *out, const struct node *n, const struct control *c);

/* Write v into out (outlen bytes) as a label value of the exposition:
 * backslash, double quote and newline escaped as \\, \" and \n. Return
 * its length, or OVL_ETOOBIG (out then "") when it does not fit. */
int metrics_escape(char *out, size_t outlen, const char *v) OVL_WUR;

/* Append the family ovl_NAME of histogram h (HELP with help, TYPE, the
 * cumulative buckets, +Inf, _sum and _count, in seconds). */
void metrics_hist(struct kvbuf *out, const char *name, const char *help, const struct hist *h);

#endif
