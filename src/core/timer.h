/* timer.h - the one lifetime idiom for a role's auxiliary libuv handles.
 *
 * A timer or idle handle that serves an object (a link's liveness timer, a
 * role's tick) is allocated on its own with timer_new()/idle_new() and
 * ended with timer_close()/idle_close(): stopped at once, closed, and freed
 * in its close callback, with the owner's pointer set to NULL. The owner
 * may therefore be freed right after the close call, and no close callback
 * ever reaches it. (An object whose life IS one handle, such as a control
 * client's pipe or a transport's socket, embeds that handle and frees
 * itself in the handle's close callback instead.)
 */
#ifndef OVL_CORE_TIMER_H
#define OVL_CORE_TIMER_H

#include <uv.h>

/* Return a new initialised timer whose data is data, or NULL (no memory). */
uv_timer_t *timer_new(uv_loop_t *loop, void *data);

/* Stop and close *t, freed once libuv is done with it; *t becomes NULL.
 * Nothing when *t is NULL. */
void timer_close(uv_timer_t **t);

/* Return a new initialised idle handle whose data is data, or NULL. */
uv_idle_t *idle_new(uv_loop_t *loop, void *data);

/* Stop and close *h like timer_close; *h becomes NULL. */
void idle_close(uv_idle_t **h);

#endif
