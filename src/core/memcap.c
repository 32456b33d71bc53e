/* memcap.c - the node-wide budget for queued bytes and its out-of-memory
 * handler: the largest queues close first. */
#include "core/link.h"
#include "core/memcap.h"

uint64_t memcap_queued(const struct node *n)
{
    uint64_t sum = 0;

    for (const struct link *l = n->links; l; l = l->next)
        if (l->tp && l->state != LINK_CLOSING)
            sum += tp_outstanding(l->tp);
    return sum;
}

/* The live link with the most bytes queued, or NULL. */
static struct link *memcap_worst(struct node *n)
{
    struct link *worst = NULL;
    size_t most = 0;

    for (struct link *l = n->links; l; l = l->next) {
        size_t q = l->tp && l->state != LINK_CLOSING ? tp_outstanding(l->tp) : 0;

        if (q > most) {
            most = q;
            worst = l;
        }
    }
    return worst;
}

unsigned memcap_check(struct node *n)
{
    uint64_t sum, target;
    unsigned closed = 0;

    if (!n->opts.max_queued || (sum = memcap_queued(n)) <= n->opts.max_queued)
        return 0;
    target = n->opts.max_queued / 4 * 3;
    log_warn(&n->log, "links hold %llu queued bytes, over max_queued: closing the largest",
             (unsigned long long)sum);
    while (sum > target) {
        struct link *l = memcap_worst(n);
        size_t q;

        if (!l)
            break;
        q = tp_outstanding(l->tp);
        link_close(l, LC_MEMORY); /* its queue is freed with its transport */
        n->ctr.memory_closed++;
        sum -= q < sum ? q : sum;
        closed++;
    }
    return closed;
}
