/* memcap.h - one memory budget for what every link holds to send.
 *
 * Each link's send queue is capped ([link] send_queue), but a thousand
 * peers that stop reading would still pin a thousand queues. The node caps
 * their sum as well ([node] max_queued, as Tor's MaxMemInQueues), counting
 * what each transport holds (tp_outstanding: the queue, and over QUIC what
 * was sent and awaits acknowledgement too): when the links together hold
 * more, the links that hold the most are closed (`memory`) until the sum
 * is back under three quarters of the budget, so the peers that take the
 * most pay, not the others. The check runs on a
 * timer node_run arms (memcap_check is also callable by itself, for tests).
 */
#ifndef OVL_CORE_MEMCAP_H
#define OVL_CORE_MEMCAP_H

#include <stdint.h>

struct node;

/* How often node_run checks the budget, ms. */
#define MEMCAP_CHECK_MS 250

/* Return the bytes every link holds now (tp_outstanding). */
uint64_t memcap_queued(const struct node *n);

/* Enforce opts.max_queued (0: no budget): close the links that hold the
 * most until the sum is at most 3/4 of it; return how many were closed. */
unsigned memcap_check(struct node *n);

#endif
