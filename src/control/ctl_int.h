/* ctl_int.h - what the control server's files share (not a public API).
 *
 * control.c owns the socket, the clients and their buffers; ctl_cmds.c the
 * node-level commands (status, peers, ...); ctl_roles.c the commands of the
 * roles (send, recv, chains, relays, dir-chain). A command returns 0 or a
 * negative code (-errno or an enum ovl_err), like every function here: 0
 * with its data lines in rq->out, or the code with rq->err set. A command
 * that starts something whose callback later calls ctl_deferred_reply()
 * exactly once for rq->cl returns ctl_defer(rq) instead: a flag on the
 * request, not a return value, says the reply comes later, so no code can
 * be taken for it.
 *
 * Errors stay negative codes everywhere inside the server; only the line
 * that writes a reply's errno= turns one into the positive errno the wire
 * carries (docs/CONTROL.md has the table).
 */
#ifndef OVL_CONTROL_CTL_INT_H
#define OVL_CONTROL_CTL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "control/control.h"
#include "control/mhttp.h"
#include "core/tp_quic.h"
#include "lib/crypto.h"
#include "lib/kvmsg.h"
#include "lib/uri.h"

#define CTL_ERR_MAX 160
#define CTL_B64     sodium_base64_VARIANT_ORIGINAL

/* What a command says of its request besides its return (ctl_req.flags). */
#define CTL_RQ_DEFERRED  (1u << 0) /* the reply comes later: ctl_deferred_reply */
#define CTL_RQ_STOP_NODE (1u << 1) /* "shutdown": stop the daemon once the reply is out */
#define CTL_RQ_SUBSCRIBE (1u << 2) /* "subscribe": the client gets events after the reply */

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
    control_reload_fn reload;             /* "reload" (control_on_reload), or NULL */
    void *reload_arg;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const struct ctl_cmd_table *const *tables; /* the commands, by name */
    unsigned n_tables;
    struct mhttp_stats http;    /* the metrics listener's counters (mhttp.c writes them) */
    char http_uri[OVL_URI_MAX]; /* and its bound address; "" while none runs */
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
    unsigned flags; /* CTL_RQ_* */
};

typedef int (*ctl_cmd_fn)(struct ctl_req *rq);

/* A table of commands; the server looks names up in the tables it was
 * started with (ctl_server_start), so it calls no command by name. cmds
 * holds one string per command, in the order of fns: its name, then the
 * argument keys it accepts, each after a blank, one followed by '*' if it
 * may repeat ("send to reply text data* length wait"), then a NUL; an
 * empty string ends them. fns[i] runs the i-th. (Rows of a name and an
 * arguments pointer beside the function would be 16 bytes more of RELRO
 * a command.) */
struct ctl_cmd_table {
    const char *cmds;
    const ctl_cmd_fn *fns;
};

/* The commands, for the dispatcher: ctl_cmds.c and ctl_roles.c. */

extern const struct ctl_cmd_table ctl_node_table; /* ctl_cmds.c */
extern const struct ctl_cmd_table ctl_role_table; /* ctl_roles.c */

/* Start the control server of n on path (control_start's work), looking
 * commands up in tables (n_tables of them, kept by reference). */
int ctl_server_start(struct node *n, const char *path, const struct ctl_cmd_table *const *tables,
                     unsigned n_tables, struct control **out) OVL_WUR;

/* Send the reply of c's pending deferred request: out (data lines, taken
 * over and emptied; begun with ctl_reply_begin) when e is 0, else an error
 * reply with msg for e, a negative code (-errno or enum ovl_err). Then carry
 * on with the client's next requests. */
void ctl_deferred_reply(struct ctl_client *cl, int e, const char *msg, struct kvbuf *out);

/* Mark rq's reply as coming later and return 0: for a command that has just
 * started what will call ctl_deferred_reply() for rq->cl. */
static inline int ctl_defer(struct ctl_req *rq)
{
    rq->flags |= CTL_RQ_DEFERRED;
    return 0;
}

/* Start a successful reply (the version line); a deferred command's
 * callback begins its out with it. */
void ctl_reply_begin(struct kvbuf *out);

/* Set rq's error text with printf formatting and return e, a negative
 * code (-errno or enum ovl_err). */
int ctl_fail(struct ctl_req *rq, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Add key=s for a string held in a fixed array of max bytes that may lack
 * its NUL (at most OVL_URI_MAX bytes are taken). */
void ctl_add_fixed(struct kvbuf *out, const char *key, const char *s, size_t max);

/* Add key=ID, the node ID of the public key pk; key= when pk is NULL. */
void ctl_add_id(struct kvbuf *out, const char *key, const uint8_t pk[OVL_ED25519_PK]);

/* Add the record of received message m (msg=index, id, from, reply_to,
 * received_ms, len, data lines): 0, or -ENOMEM or -EIO (out unchanged). */
int ctl_add_msg(struct kvbuf *out, size_t index, const struct client_msg *m);

/* Counters as tables rather than a call each (half the bytes): names
 * holds each counter's name followed by a NUL, the list ending with an
 * empty name; offs[i] is the byte offset of the i-th in the stats
 * structure, a uint64_t, or a uint32_t with CTL_U32 set. CTL_STAT_NAME
 * and CTL_STAT_OFF make both from one X-macro list of (field, bits). */
#define CTL_U32                  0x8000u
#define CTL_STAT_NAME(f, bits)   #f "\0"
#define CTL_STAT_OFF(T, f, bits) (uint16_t)(offsetof(T, f) | ((bits) == 32 ? CTL_U32 : 0)),

/* Return the counter at offset off (as in offs) of base. */
uint64_t ctl_stat(const void *base, uint16_t off);

/* Add PREFIX + NAME=value for each counter of names and offs in base. */
void ctl_add_stats(struct kvbuf *out, const char *prefix, const char *names, const uint16_t *offs,
                   const void *base);

/* Milliseconds from then to now, 0 if then is unset or in the future. */
uint64_t ctl_since(uint64_t now, uint64_t then);

/* Add the role counters of status (relay_*, client_*, dir_*) for the roles
 * this node runs. */
void ctl_status_roles(struct kvbuf *out, const struct node *n);

/* Sum the counters of n's QUIC listeners into sum (zeros without QUIC). */
void ctl_quic_sum(const struct node *n, struct tp_quic_stats *sum);

/* The command "metrics" (metrics.c): the exposition, one line= per line. */
int ctl_cmd_metrics(struct ctl_req *rq);

#endif
