/* timer.c - auxiliary handles allocated alone and freed in their close callback. */
#include <stdlib.h>

#include "core/timer.h"

static void timer_freed(uv_handle_t *h)
{
    free(h);
}

uv_timer_t *timer_new(uv_loop_t *loop, void *data)
{
    uv_timer_t *t = malloc(sizeof(*t));

    if (!t)
        return NULL;
    uv_timer_init(loop, t); /* cannot fail for timers */
    t->data = data;
    return t;
}

void timer_close(uv_timer_t **t)
{
    if (!*t)
        return;
    uv_timer_stop(*t);
    uv_close((uv_handle_t *)*t, timer_freed);
    *t = NULL;
}

uv_idle_t *idle_new(uv_loop_t *loop, void *data)
{
    uv_idle_t *h = malloc(sizeof(*h));

    if (!h)
        return NULL;
    uv_idle_init(loop, h); /* cannot fail for idle handles */
    h->data = data;
    return h;
}

void idle_close(uv_idle_t **h)
{
    if (!*h)
        return;
    uv_idle_stop(*h);
    uv_close((uv_handle_t *)*h, timer_freed);
    *h = NULL;
}
