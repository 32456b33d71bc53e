/* test_sdnotify.c - unit tests for the service manager's notification
 * socket (src/app/sdnotify.c): NOTIFY_SOCKET values good and bad, the
 * watchdog's gap, datagrams received on a socket of the test's own (a path
 * and an abstract name), a manager gone, and WATCHDOG=1 sent on a loop. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/sdnotify.h"
#include "lib/crypto.h"
#include "check_main.h"
#include "loopfix.h"

/* A manager's end: a datagram socket bound where NOTIFY_SOCKET points. */
struct mgr {
    int fd;
    char dir[64];  /* the temporary directory of a path socket, or "" */
    char env[128]; /* the NOTIFY_SOCKET value that names it */
};

/* Bind m at a path in a new temporary directory. */
static void mgr_path(struct mgr *m)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    snprintf(m->dir, sizeof(m->dir), "/tmp/ovl-sdn-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(m->dir));
    snprintf(m->env, sizeof(m->env), "%s/notify", m->dir);
    ck_assert_uint_lt(strlen(m->env), sizeof(a.sun_path));
    memcpy(a.sun_path, m->env, strlen(m->env) + 1);
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(m->fd, 0);
    ck_assert_int_eq(bind(m->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

/* Bind m at a random name in the abstract namespace ("@name"). */
static void mgr_abstract(struct mgr *m)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    uint8_t r[8];
    size_t n;

    ovl_random(r, sizeof(r));
    m->dir[0] = '\0';
    n = (size_t)snprintf(m->env, sizeof(m->env), "@ovl-sdn-%d-%02x%02x%02x%02x%02x%02x%02x%02x",
                         (int)getpid(), r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    memcpy(a.sun_path + 1, m->env + 1, n - 1); /* sun_path[0] stays NUL */
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(m->fd, 0);
    ck_assert_int_eq(
        bind(m->fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
}

static void mgr_close(struct mgr *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    if (m->dir[0]) {
        char p[160];

        snprintf(p, sizeof(p), "%s/notify", m->dir);
        unlink(p);
        rmdir(m->dir);
        m->dir[0] = '\0';
    }
}

/* Receive one datagram into buf without waiting; its length, or -1. */
static ssize_t mgr_recv(struct mgr *m, char *buf, size_t cap)
{
    ssize_t n = recv(m->fd, buf, cap - 1, MSG_DONTWAIT);

    buf[n > 0 ? n : 0] = '\0';
    return n;
}

START_TEST(test_addr)
{
    struct sockaddr_un a;
    socklen_t len;
    char v[160];

    ck_assert_int_eq(sdnotify_addr("/run/systemd/notify", &a, &len), 0);
    ck_assert_int_eq(a.sun_family, AF_UNIX);
    ck_assert_str_eq(a.sun_path, "/run/systemd/notify");
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 20);
    ck_assert_int_eq(sdnotify_addr("@ovl/notify", &a, &len), 0);
    ck_assert_int_eq(a.sun_path[0], '\0');
    ck_assert_mem_eq(a.sun_path + 1, "ovl/notify", 10);
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 11);
    /* The longest that fit: a path and its NUL, a NUL and a name. */
    memset(v, 'a', sizeof(v));
    v[0] = '/';
    v[sizeof(a.sun_path) - 1] = '\0';
    ck_assert_int_eq(sdnotify_addr(v, &a, &len), 0);
    v[sizeof(a.sun_path) - 1] = 'a';
    v[sizeof(a.sun_path)] = '\0';
    ck_assert_int_eq(sdnotify_addr(v, &a, &len), OVL_EINVAL);
    ck_assert_uint_eq(len, 0);
    v[0] = '@';
    ck_assert_int_eq(sdnotify_addr(v, &a, &len), 0);
    ck_assert_uint_eq(len, sizeof(a));
    v[sizeof(a.sun_path)] = 'a';
    v[sizeof(a.sun_path) + 1] = '\0';
    ck_assert_int_eq(sdnotify_addr(v, &a, &len), OVL_EINVAL);
    /* Neither absolute nor abstract, or nothing after the first byte. */
    static const char *const bad[] = {
        "", "@", "/", "run/systemd/notify", "notify", "vsock:2:1234", " /run/notify"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(sdnotify_addr(bad[i], &a, &len), OVL_EINVAL);
        ck_assert_uint_eq(len, 0);
    }
    ck_assert_int_eq(sdnotify_addr(NULL, &a, &len), OVL_EINVAL);
}
END_TEST

START_TEST(test_watchdog_ms)
{
    ck_assert_uint_eq(sdnotify_watchdog_ms("60000000", NULL, 7), 30000);
    ck_assert_uint_eq(sdnotify_watchdog_ms("60000000", "7", 7), 30000);
    ck_assert_uint_eq(sdnotify_watchdog_ms("3000", NULL, 7), 1);
    ck_assert_uint_eq(sdnotify_watchdog_ms("1", NULL, 7), 1);
    /* Another process's watchdog, or none. */
    ck_assert_uint_eq(sdnotify_watchdog_ms("60000000", "8", 7), 0);
    ck_assert_uint_eq(sdnotify_watchdog_ms("60000000", "", 7), 0);
    ck_assert_uint_eq(sdnotify_watchdog_ms("60000000", "7x", 7), 0);
    ck_assert_uint_eq(sdnotify_watchdog_ms(NULL, NULL, 7), 0);
    static const char *const bad[] = {
        "", "0", "-1", "+5", " 5", "5 ", "5s", "0x10", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_uint_eq(sdnotify_watchdog_ms(bad[i], NULL, 7), 0);
    ck_assert_uint_eq(sdnotify_watchdog_ms("18446744073709551615", NULL, 7),
                      18446744073709551615ull / 2000);
}
END_TEST

/* Without NOTIFY_SOCKET, or with a bad one, nothing is sent and nothing fails. */
START_TEST(test_no_manager)
{
    struct sdnotify s;
    uv_loop_t loop;

    ck_assert_int_eq(sdnotify_open(&s, NULL, "1000000", NULL), 0);
    ck_assert_int_eq(s.fd, -1);
    ck_assert_int_eq(sdnotify_send(&s, "READY=1"), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sdnotify_watchdog_start(&s, &loop), 0);
    ck_assert_ptr_null(s.watchdog);
    sdnotify_close(&s);
    ck_assert_int_eq(sdnotify_open(&s, "relative/notify", "1000000", NULL), OVL_EINVAL);
    ck_assert_int_eq(s.fd, -1);
    ck_assert_int_eq(sdnotify_send(&s, "READY=1"), 0);
    ck_assert_int_eq(sdnotify_watchdog_start(&s, &loop), 0);
    ck_assert_ptr_null(s.watchdog);
    sdnotify_close(&s);
    sdnotify_close(&s); /* twice is harmless */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Each message arrives as one datagram, at a path and at an abstract name. */
static void send_and_receive(struct mgr *m)
{
    struct sdnotify s;
    char buf[256];

    ck_assert_int_eq(sdnotify_open(&s, m->env, NULL, NULL), 0);
    ck_assert_int_ge(s.fd, 0);
    ck_assert_int_eq(sdnotify_send(&s, "READY=1\nSTATUS=node x, roles relay"), 0);
    ck_assert_int_eq(sdnotify_send(&s, "STOPPING=1"), 0);
    ck_assert_int_eq(mgr_recv(m, buf, sizeof(buf)), 34);
    ck_assert_str_eq(buf, "READY=1\nSTATUS=node x, roles relay");
    ck_assert_int_eq(mgr_recv(m, buf, sizeof(buf)), 10);
    ck_assert_str_eq(buf, "STOPPING=1");
    ck_assert_int_lt(mgr_recv(m, buf, sizeof(buf)), 0);
    sdnotify_close(&s);
    ck_assert_int_eq(s.fd, -1);
}

START_TEST(test_path)
{
    struct mgr m;

    mgr_path(&m);
    send_and_receive(&m);
    mgr_close(&m);
}
END_TEST

START_TEST(test_abstract)
{
    struct mgr m;

    mgr_abstract(&m);
    send_and_receive(&m);
    mgr_close(&m);
}
END_TEST

/* A manager that went away: the send fails with -errno, and nothing else. */
START_TEST(test_manager_gone)
{
    struct sdnotify s;
    struct mgr m;
    char env[128];

    mgr_path(&m);
    snprintf(env, sizeof(env), "%s", m.env);
    mgr_close(&m);
    ck_assert_int_eq(sdnotify_open(&s, env, NULL, NULL), 0);
    ck_assert_int_lt(sdnotify_send(&s, "READY=1"), 0);
    sdnotify_close(&s);
    mgr_abstract(&m);
    snprintf(env, sizeof(env), "%s", m.env);
    mgr_close(&m);
    ck_assert_int_eq(sdnotify_open(&s, env, NULL, NULL), 0);
    ck_assert_int_eq(sdnotify_send(&s, "READY=1"), -ECONNREFUSED);
    sdnotify_close(&s);
}
END_TEST

struct wd {
    uv_loop_t loop;
    uv_timer_t deadline, poll;
    bool timed_out;
    bool (*done)(struct wd *);
    void (*pump)(struct wd *);
    struct mgr m;
    unsigned pings, others;
};
LOOPFIX_DEFINE(struct wd, 5)

/* Count the WATCHDOG=1 datagrams (and anything else) received so far. */
static void wd_pump(struct wd *w)
{
    char buf[64];

    while (mgr_recv(&w->m, buf, sizeof(buf)) >= 0) {
        if (strcmp(buf, "WATCHDOG=1") == 0)
            w->pings++;
        else
            w->others++;
    }
}

static bool three_pings(struct wd *w)
{
    return w->pings >= 3;
}

/* With WATCHDOG_USEC, WATCHDOG=1 comes again and again while the loop runs,
 * and its timer is gone once the watchdog is stopped. */
START_TEST(test_watchdog)
{
    struct wd *w = calloc(1, sizeof(*w));
    struct sdnotify s;

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    w->pump = wd_pump;
    mgr_abstract(&w->m);
    ck_assert_int_eq(sdnotify_open(&s, w->m.env, "20000", NULL), 0);
    ck_assert_uint_eq(s.watchdog_ms, 10);
    ck_assert_int_eq(sdnotify_watchdog_start(&s, &w->loop), 0);
    ck_assert_ptr_nonnull(s.watchdog);
    ck_assert(run_until(w, three_pings, 20000));
    ck_assert_uint_eq(w->others, 0);
    sdnotify_watchdog_stop(&s);
    ck_assert_ptr_null(s.watchdog);
    loopfix_close(w);
    ck_assert_int_eq(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0); /* no timer left to send */
    sdnotify_close(&s);
    mgr_close(&w->m);
    free(w);
}
END_TEST

/* WATCHDOG_PID naming another process: no watchdog, READY=1 still sent. */
START_TEST(test_watchdog_other_pid)
{
    struct sdnotify s;
    struct mgr m;
    uv_loop_t loop;
    char pid[32], buf[64];

    mgr_abstract(&m);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    ck_assert_int_eq(sdnotify_open(&s, m.env, "20000", pid), 0);
    ck_assert_uint_eq(s.watchdog_ms, 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sdnotify_watchdog_start(&s, &loop), 0);
    ck_assert_ptr_null(s.watchdog);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(sdnotify_send(&s, "READY=1"), 0);
    ck_assert_int_eq(mgr_recv(&m, buf, sizeof(buf)), 7);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    sdnotify_close(&s);
    ck_assert_int_eq(sdnotify_open(&s, m.env, "20000", pid), 0);
    ck_assert_uint_eq(s.watchdog_ms, 10);
    sdnotify_close(&s);
    mgr_close(&m);
}
END_TEST

static Suite *sdnotify_suite(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_addr);
    tcase_add_test(tc, test_watchdog_ms);
    tcase_add_test(tc, test_no_manager);
    tcase_add_test(tc, test_path);
    tcase_add_test(tc, test_abstract);
    tcase_add_test(tc, test_manager_gone);
    tcase_add_test(tc, test_watchdog);
    tcase_add_test(tc, test_watchdog_other_pid);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(sdnotify_suite)
