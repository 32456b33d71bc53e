/* sdnotify.c - systemd's notification socket protocol, spoken by hand
 * (see sdnotify.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "app/sdnotify.h"
#include "core/timer.h"

#define WATCHDOG_MSG "WATCHDOG=1"

/* Parse a positive decimal integer of digits only (no sign, no blanks);
 * 0 when s is not one or does not fit 64 bits. */
static uint64_t parse_u64(const char *s)
{
    uint64_t v = 0;

    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

/* Turn a NOTIFY_SOCKET value into a unix socket address. */
int sdnotify_addr(const char *v, struct sockaddr_un *addr, socklen_t *len)
{
    size_t n = v ? strlen(v) : 0;

    *len = 0;
    memset(addr, 0, sizeof(*addr));
    /* An abstract name's leading NUL takes the '@''s place; a path keeps
     * room for its terminating NUL. */
    if (n < 2 || (v[0] != '/' && v[0] != '@') || n + (v[0] == '/') > sizeof(addr->sun_path))
        return OVL_EINVAL;
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, v, n);
    if (v[0] == '@')
        addr->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (v[0] == '/'));
    return 0;
}

/* Return the gap at which to send WATCHDOG=1 (see sdnotify.h). */
uint64_t sdnotify_watchdog_ms(const char *usec, const char *pid, unsigned long self)
{
    uint64_t us = parse_u64(usec);

    if (!us || (pid && parse_u64(pid) != self))
        return 0;
    return us / 2000 ? us / 2000 : 1;
}

/* Set s up from the environment's values (see sdnotify.h). */
int sdnotify_open(struct sdnotify *s, const char *sock, const char *usec, const char *pid)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (!sock)
        return 0;
    if ((rc = sdnotify_addr(sock, &s->addr, &s->addr_len)) != 0)
        return rc;
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    s->watchdog_ms = sdnotify_watchdog_ms(usec, pid, (unsigned long)getpid());
    return 0;
}

/* Send msg as one datagram, without waiting. */
int sdnotify_send(const struct sdnotify *s, const char *msg)
{
    if (s->fd < 0)
        return 0;
    if (sendto(s->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
               (const struct sockaddr *)&s->addr, s->addr_len) < 0)
        return -errno;
    return 0;
}

static void on_watchdog(uv_timer_t *t)
{
    /* A lost ping is made up for by the next: the manager waits twice the gap. */
    (void)sdnotify_send(t->data, WATCHDOG_MSG);
}

/* Send WATCHDOG=1 every watchdog_ms, the first at once. */
int sdnotify_watchdog_start(struct sdnotify *s, uv_loop_t *loop)
{
    if (s->fd < 0 || !s->watchdog_ms || s->watchdog)
        return 0;
    s->watchdog = timer_new(loop, s);
    if (!s->watchdog)
        return OVL_ENOMEM;
    uv_timer_start(s->watchdog, on_watchdog, 0, s->watchdog_ms);
    return 0;
}

/* Stop the watchdog's timer. */
void sdnotify_watchdog_stop(struct sdnotify *s)
{
    timer_close(&s->watchdog);
}

/* Stop the watchdog and close the socket. */
void sdnotify_close(struct sdnotify *s)
{
    sdnotify_watchdog_stop(s);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
