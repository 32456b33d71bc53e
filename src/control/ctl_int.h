/* ctl_int.h - what the control server's files share (not a public API).
 *
 * control.c owns the socket, the clients and their buffers; ctl_cmds.c the
 * node-level commands (status, peers, ...); ctl_roles.c the commands of the
 * roles (send, recv, chains, relays, dir-chain). A command fills rq->out and
 * returns 0, or returns a positive errno with rq->err set, or returns
 * CTL_DEFER after starting something whose callback later calls
 * ctl_deferred_reply() exactly once for rq->cl.
 */
#ifndef OVL_CONTROL_CTL_INT_H
#define OVL_CONTROL_CTL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "control/control.h"
#include "lib/kvmsg.h"

#define CTL_ERR_MAX 160
#define CTL_DEFER   (-1) /* a command's "reply comes later" */
#define CTL_ARGS    7

struct ctl_client;

struct control {
    struct node *node;
    uv_pipe_t server;
    struct ctl_client *clients;
    unsigned n_active; /* clients counted against CONTROL_MAX_CLIENTS */
    unsigned open;     /* server handle + clients not yet freed */
    bool stopping;
    struct control_stats st;
    uint64_t max_message;                 /* [client] max_message: caps send */
    uint64_t send_max;                    /* control_send_max(max_message) */
    unsigned chain_length, chain_backups; /* dir-chain defaults from [chain] */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One request being answered. The pairs of m point into the client's
 * buffer: a deferred command copies what it needs before returning. */
struct ctl_req {
    struct control *ctl;
    struct ctl_client *cl;
    const struct kvmsg *m;
    const uint8_t *raw; /* the bytes after the request's blank line (send length=N) */
    size_t raw_len;     /* N, or 0 */
    struct kvbuf *out;
    const char *err; /* error text when the command fails */
    char errbuf[CTL_ERR_MAX];
    bool stop_node;
};

typedef int (*ctl_cmd_fn)(struct ctl_req *rq);

struct ctl_cmd {
    const char *name;
    ctl_cmd_fn fn;
    const char *args[CTL_ARGS]; /* accepted argument keys, NULL-terminated */
    const char *repeat;         /* the one argument that may repeat, or NULL */
};

/* The commands, for the dispatcher: ctl_cmds.c and ctl_roles.c. */
extern const struct ctl_cmd ctl_node_cmds[];
extern const size_t ctl_node_n_cmds;
extern const struct ctl_cmd ctl_role_cmds[];
extern const size_t ctl_role_n_cmds;

/* Send the reply of c's pending deferred request: out (data lines, taken
 * over and emptied; begun with ctl_reply_begin) when e is 0, else an error reply with e and msg.
 * Then carry on with the client's next requests. */
void ctl_deferred_reply(struct ctl_client *cl, int e, const char *msg, struct kvbuf *out);

/* Start a successful reply (the version line); a deferred command's
 * callback begins its out with it. */
void ctl_reply_begin(struct kvbuf *out);

/* Set rq's error text with printf formatting and return e. */
int ctl_fail(struct ctl_req *rq, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Return the positive errno a control reply uses for an ovl error code. */
int ctl_errno(int ovl_err);

/* Milliseconds from then to now, 0 if then is unset or in the future. */
uint64_t ctl_since(uint64_t now, uint64_t then);

/* Add the role counters of status (relay_*, client_*, dir_*) for the roles
 * this node runs. */
void ctl_status_roles(struct kvbuf *out, const struct node *n);

#endif
