/* sdnotify.h - tell a service manager how ovld is doing, over systemd's
 * notification socket protocol (sd_notify(3)), without libsystemd.
 *
 * A manager that waits for readiness (systemd's Type=notify) names a unix
 * datagram socket in the environment: NOTIFY_SOCKET is an absolute path,
 * or @name for a socket in the abstract namespace (the '@' stands for the
 * leading NUL). Each message is one datagram of KEY=VALUE lines separated
 * by newlines: READY=1 once the node is up, RELOADING=1 then READY=1 around
 * a reload, STOPPING=1 when it shuts down, WATCHDOG=1 at least once every
 * WATCHDOG_USEC microseconds when the manager set that (WatchdogSec=);
 * WATCHDOG_PID, when set, names the process the watchdog is meant for.
 *
 * Without NOTIFY_SOCKET every call does nothing and returns 0. Sends never
 * block (MSG_DONTWAIT): a datagram the manager cannot take at once is lost
 * and the send returns -errno. The socket is made once, at open, and lives
 * until close; the watchdog is a timer on the loop (core/timer.h), so a
 * loop that hangs stops the pings and the manager's watchdog fires.
 */
#ifndef OVL_APP_SDNOTIFY_H
#define OVL_APP_SDNOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <uv.h>

#include "lib/err.h"

struct sdnotify {
    int fd;                  /* -1: no manager to tell */
    socklen_t addr_len;      /* of addr, the abstract name's bytes counted */
    struct sockaddr_un addr; /* where NOTIFY_SOCKET points */
    uint64_t watchdog_ms;    /* the gap between WATCHDOG=1, half the manager's; 0: none */
    uv_timer_t *watchdog;    /* sends WATCHDOG=1; NULL until started and once stopped */
};

/* Turn a NOTIFY_SOCKET value into a unix socket address: "/path" or
 * "@name" (abstract). Return 0, or OVL_EINVAL when v is empty, relative,
 * a bare "@", or too long for sun_path; *len is then 0. */
int sdnotify_addr(const char *v, struct sockaddr_un *addr, socklen_t *len) OVL_WUR;

/* Return the gap in milliseconds at which to send WATCHDOG=1: half of usec
 * (WATCHDOG_USEC), at least 1. Return 0 (no watchdog) when usec is NULL,
 * not a positive decimal integer, or pid (WATCHDOG_PID, may be NULL) is set
 * and is not self. */
uint64_t sdnotify_watchdog_ms(const char *usec, const char *pid, unsigned long self);

/* Set s up from the values of NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
 * (each NULL when unset), for this process (getpid()). Return 0 (with or
 * without a manager to tell), OVL_EINVAL when sock is set but malformed,
 * or -errno when the socket cannot be made; s then tells nothing, and is
 * always safe to use and to close. */
int sdnotify_open(struct sdnotify *s, const char *sock, const char *usec, const char *pid);

/* Send msg ("READY=1", lines joined by '\n') as one datagram. Return 0
 * (also when there is no manager), or -errno: the datagram is lost. */
int sdnotify_send(const struct sdnotify *s, const char *msg);

/* Send WATCHDOG=1 now and then every watchdog_ms on loop, when there is a
 * manager that asked for it. Return 0, or OVL_ENOMEM. */
int sdnotify_watchdog_start(struct sdnotify *s, uv_loop_t *loop) OVL_WUR;

/* Stop the watchdog's timer (closed on the loop, which must still run to
 * free it). Nothing when it is not running. */
void sdnotify_watchdog_stop(struct sdnotify *s);

/* Stop the watchdog and close the socket; s then tells nothing. */
void sdnotify_close(struct sdnotify *s);

#endif
