/* loopfix.h - run a test's uv loop until a condition holds, with a deadline.
 *
 * Tests that run several nodes on one loop keep, in their own struct T:
 *     uv_loop_t loop; uv_timer_t deadline, poll; bool timed_out;
 *     bool (*done)(T *); void (*pump)(T *);   (pump may stay NULL)
 * and say LOOPFIX_DEFINE(T, POLL_MS) once. That defines
 *     loopfix_init(w)       the two timers, after uv_loop_init
 *     loopfix_close(w)      close them (run the loop afterwards)
 *     run_until(w, done, ms)  run until done(w) or ms pass; true if it held
 * Every POLL_MS the poll timer calls pump(w), if set, then done(w).
 */
#ifndef OVL_TESTS_LOOPFIX_H
#define OVL_TESTS_LOOPFIX_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#define LOOPFIX_DEFINE(T, POLL_MS)                                                                 \
    static inline void loopfix_deadline_cb(uv_timer_t *h)                                          \
    {                                                                                              \
        T *w = h->data;                                                                            \
                                                                                                   \
        w->timed_out = true;                                                                       \
        uv_stop(&w->loop);                                                                         \
    }                                                                                              \
                                                                                                   \
    static inline void loopfix_poll_cb(uv_timer_t *h)                                              \
    {                                                                                              \
        T *w = h->data;                                                                            \
                                                                                                   \
        if (w->pump)                                                                               \
            w->pump(w);                                                                            \
        if (w->done(w))                                                                            \
            uv_stop(&w->loop);                                                                     \
    }                                                                                              \
                                                                                                   \
    static inline void loopfix_init(T *w)                                                          \
    {                                                                                              \
        uv_timer_init(&w->loop, &w->deadline);                                                     \
        uv_timer_init(&w->loop, &w->poll);                                                         \
        w->deadline.data = w->poll.data = w;                                                       \
    }                                                                                              \
                                                                                                   \
    static inline void loopfix_close(T *w)                                                         \
    {                                                                                              \
        uv_close((uv_handle_t *)&w->deadline, NULL);                                               \
        uv_close((uv_handle_t *)&w->poll, NULL);                                                   \
    }                                                                                              \
                                                                                                   \
    static inline bool run_until(T *w, bool (*done)(T *), uint64_t ms)                             \
    {                                                                                              \
        w->done = done;                                                                            \
        w->timed_out = false;                                                                      \
        uv_timer_start(&w->deadline, loopfix_deadline_cb, ms, 0);                                  \
        uv_timer_start(&w->poll, loopfix_poll_cb, (POLL_MS), (POLL_MS));                           \
        uv_run(&w->loop, UV_RUN_DEFAULT);                                                          \
        uv_timer_stop(&w->deadline);                                                               \
        uv_timer_stop(&w->poll);                                                                   \
        return !w->timed_out && done(w);                                                           \
    }

#endif
