/* ovlctl.h - what ovlctl.c and ovlctl_roles.c share (not a library API).
 *
 * ovlctl.c holds the socket I/O, the option parser and the node-level
 * subcommands; ovlctl_roles.c the subcommands of the roles (send, recv,
 * chains, relays, dir-chain). Every <cmd>_main returns the exit status.
 */
#ifndef OVL_APP_OVLCTL_H
#define OVL_APP_OVLCTL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "lib/kvmsg.h"

enum {
    EXIT_DAEMON = 1,  /* the daemon answered with an error */
    EXIT_USAGE = 2,   /* bad command line or config */
    EXIT_CONNECT = 3, /* cannot connect, timeout, connection lost */
};

#define REPLY_MAX   ((size_t)256 << 20) /* a recv reply may carry 16 MiB and more */
#define REPLY_PAIRS 100000000

struct opts {
    const char *socket;
    const char *config;
    bool json;
    int timeout_ms;
    bool timeout_set;            /* --timeout was given */
    long long deadline;          /* CLOCK_MONOTONIC ms */
    volatile sig_atomic_t *stop; /* set by a signal: a stream ends (request_stream) */
    char sockbuf[PATH_MAX];
};

/* Received bytes; one reply is the first msg_len bytes. */
struct reply {
    char *data;
    size_t len, cap;
    size_t scan; /* where to resume looking for the blank line */
};

/* Return CLOCK_MONOTONIC in milliseconds. */
long long now_ms(void);

/* Start a request for cmd in b (version and command lines). */
void request_begin(struct kvbuf *b, const char *cmd);

/* End and send the request in b (freed), parse the reply into m and check
 * errno=0 (else print the daemon's error). Return 0 or an exit status; on
 * success the caller frees m and r->data. */
int request_kv(const struct opts *o, const char *cmd, struct kvbuf *b, struct kvmsg *m,
               struct reply *r);

/* As request_kv, and send n raw bytes after the request's blank line (a
 * send with length=n). b is freed; raw stays the caller's. */
int request_kv_raw(const struct opts *o, const char *cmd, struct kvbuf *b, const void *raw,
                   size_t n, struct kvmsg *m, struct reply *r);

/* Send the request in b (freed) and hand its reply, then each message the
 * daemon pushes after it (subscribe), to fn, until fn returns non-zero,
 * the connection ends or a signal sets *o->stop (then 0). The timeout
 * bounds the reply only; o->stop must be set. Return 0 or an exit status. */
int request_stream(struct opts *o, const char *cmd, struct kvbuf *b,
                   int (*fn)(void *arg, const struct kvmsg *m), void *arg);

/* request_kv for a command with at most one argument key=val. */
int request(const struct opts *o, const char *cmd, const char *key, const char *val,
            struct kvmsg *m, struct reply *r);

/* True for the reply's envelope lines (ovl-control, errno). */
bool is_envelope(const char *key);

/* A decimal of at most 18 digits becomes a JSON number, anything else a string. */
cJSON *json_value(const char *v);

/* Print root (consumed) as indented JSON; EXIT_DAEMON when out of memory. */
int json_print(cJSON *root);

/* Print every data line as "key: value", aligned. */
void print_pairs(const struct kvmsg *m);

/* Format milliseconds (a decimal string) as 5s, 3m07s, 2h05m or 1d03h. */
void format_age(char *out, size_t outlen, const char *ms);

/* EXIT_USAGE (after saying so) if the subcommand got arguments. */
int no_args(int argc, char **argv);

/* True if arg is shrt, lng or "lng=..." (then *eq points at the '='). */
bool opt_is(const char *arg, const char *shrt, const char *lng, const char **eq);

/* The value of an option: after '=' in eq, else the next argument (NULL if none). */
const char *opt_value(int argc, char **argv, int *i, const char *eq);

int send_main(struct opts *o, int argc, char **argv); /* send and reply */
int recv_main(struct opts *o, int argc, char **argv);
int chains_main(struct opts *o, int argc, char **argv);
int relays_main(struct opts *o, int argc, char **argv);
int relay_chains_main(struct opts *o, int argc, char **argv);
int dir_chain_main(struct opts *o, int argc, char **argv);
int lookup_main(struct opts *o, int argc, char **argv);

#endif
