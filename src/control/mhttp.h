/* mhttp.h - the metrics listener: GET /metrics over HTTP/1.1 on the
 * node's loop ([metrics] listen; docs/CONFIG.md, docs/CONTROL.md
 * "Metrics over HTTP").
 *
 * A plain TCP listener that answers one request per connection with the
 * exposition of control/metrics.h and closes it (Connection: close):
 * 200 for GET /metrics, 404 for another path, 405 for another method,
 * 400 for a malformed head, 431 for a head over MHTTP_REQ_MAX bytes, 505
 * for a version other than 1.0 and 1.1 (control/httpreq.h parses). At
 * most MHTTP_MAX_CONNS connections at once and MHTTP_MAX_PER_ADDR from
 * one address: one over either is closed at once, unanswered. A
 * connection must send its head within MHTTP_TIMEOUT_MS of its accept,
 * and has as long again to take the answer; past either it is closed.
 * After the answer, what the client still sends is read and dropped
 * until it closes (so that the close is a FIN, never a reset that could
 * destroy the answer in flight).
 *
 * Lifetime: the listener and each connection are freed in their handles'
 * close callbacks; mhttp_stop closes them all, and the struct goes with
 * the last of them.
 */
#ifndef OVL_CONTROL_MHTTP_H
#define OVL_CONTROL_MHTTP_H

#include <stdint.h>

#include "control/httpreq.h"
#include "lib/err.h"

#define MHTTP_REQ_MAX      HTTPREQ_HEAD_MAX /* bytes of a request's head: 8192 */
#define MHTTP_MAX_CONNS    16
#define MHTTP_MAX_PER_ADDR 4
#define MHTTP_TIMEOUT_MS   5000

/* The statuses the listener answers: 200, 400, 404, 405, 431, 505, in
 * this order in mhttp_stats.answers. */
#define MHTTP_N_CODES 6

/* The listener's counters; the control server holds them, so that the
 * metrics and status read them while the listener runs (control.h). */
struct mhttp_stats {
    uint64_t accepted;               /* connections taken */
    uint64_t refused;                /* closed at once: over a cap */
    uint64_t timeouts;               /* closed for want of a head, or of reading the answer */
    uint64_t answers[MHTTP_N_CODES]; /* answers sent, by status */
    uint32_t open;                   /* connections taken and not yet closed */
};

struct control;
struct mhttp;

/* Listen on addr (IP:PORT or [IPv6]:PORT; port 0 picks one) for the
 * metrics of c's node, whose status then names the bound address
 * (metrics_listen). A non-loopback address is logged as a warning. *out
 * is NULL on failure (logged): OVL_EINVAL for a bad address or one that
 * cannot be bound, OVL_EEXIST when it is taken, OVL_ENOMEM. Stop it
 * before c. */
int mhttp_start(struct control *c, const char *addr, struct mhttp **out) OVL_WUR;

/* Close the listener and every connection; m is freed once their close
 * callbacks ran. NULL-safe. */
void mhttp_stop(struct mhttp *m);

#endif
