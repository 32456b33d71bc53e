/* fuzz_control.c - the control server's request handling (src/control:
 * its request scanner, the raw-payload rule of "send" and "reply", the
 * envelope and argument checks, subscribers and every command's argument
 * parsing), reached through its one public entry point, control_start,
 * and a real socket.
 *
 * For every input the harness brings up a node with all three roles (not
 * started: no listener, no peer, so nothing leaves the process), opens its
 * control socket in a private temporary directory, connects, writes the
 * input, half-closes, runs the loop until the server has answered and
 * gone quiet, then stops and frees everything as ovld does. The server is
 * driven only by the loop's zero-timeout polls, and a local socket hands
 * every byte over at once, so an input always takes the same path.
 *
 * Input: the bytes a control client sends (docs/CONTROL.md): requests,
 * pipelined, possibly cut short or oversized.
 *
 * Properties: no sanitizer report, no leak, and every byte the server
 * writes back is a well-formed control reply stream.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/config.h"
#include "control/control.h"
#include "core/node_run.h"
#include "fuzz.h"
#include "lib/kvmsg.h"

#define QUIET_POLLS 8          /* polls with nothing new before the harness stops waiting */
#define MAX_POLLS   10000      /* a bound, in case a reply stream never ends */
#define REPLY_MAX   (1u << 22) /* replies kept for the check; the rest is drained */

static uv_loop_t loop;
static struct ovl_identity id;
static struct ovl_config cfg; /* the defaults, with small client caps */
static char sock_dir[64], sock_path[96];
static char *reply;

static void on_app_stop(struct node *n)
{
    (void)n; /* "shutdown" is answered; the harness stops the node itself */
}

static void remove_dir(void)
{
    unlink(sock_path);
    rmdir(sock_dir);
}

static void seeds(const char *dir)
{
#define SEED(name, text) fuzz_write_seed(dir, name, text, sizeof(text) - 1)
    struct ovl_identity peer;
    char nid[OVL_NODE_ID_LEN + 1], text[1024];
    int n;

    SEED("status", "ovl-control=1\ncommand=status\n\n");
    SEED("pipelined", "ovl-control=1\ncommand=version\n\novl-control=1\ncommand=peers\n\n"
                      "ovl-control=1\ncommand=log-level\nlevel=warn\n\n"
                      "ovl-control=1\ncommand=chains\n\novl-control=1\ncommand=relay-chains\n\n"
                      "ovl-control=1\ncommand=relays\n\novl-control=1\ncommand=recv\nmax=5\n\n");
    SEED("errors", "ovl-control=2\ncommand=status\n\nnot a line\n\n"
                   "ovl-control=1\ncommand=nope\n\novl-control=1\ncommand=recv\nmax=0\nmax=1\n\n");
    SEED("dir-chain", "ovl-control=1\ncommand=dir-chain\nlength=2\nbackups=1\n\n");
    SEED("metrics", "ovl-control=1\ncommand=metrics\n\novl-control=1\ncommand=metrics\nx=1\n\n");
    SEED("new-chain-shutdown", "ovl-control=1\ncommand=new-chain\n\n"
                               "ovl-control=1\ncommand=shutdown\n\n");
    SEED("reply-subscribe", "ovl-control=1\ncommand=reply\nid=000102030405060708090a0b0c0d0e0f\n"
                            "text=hi\n\novl-control=1\ncommand=reply\nid=00\nlength=3\n\nabc"
                            "ovl-control=1\ncommand=subscribe\nevents=messages\n\n"
                            "ovl-control=1\ncommand=status\n\n");
    fuzz_identity(&peer, 41); /* not the node itself: sending to oneself is refused */
    node_id_format(nid, peer.pk);
    n = snprintf(text, sizeof(text),
                 "ovl-control=1\ncommand=send\nto=%s\ntext=hello\n\n"
                 "ovl-control=1\ncommand=send\nto=%s\nreply=1\ndata=aGVsbG8g\ndata=d29ybGQ=\n\n"
                 "ovl-control=1\ncommand=send\nto=%s\nlength=5\n\nbytes"
                 "ovl-control=1\ncommand=send\nto=%s\nwait=1\ntext=x\n\n",
                 nid, nid, nid, nid);
    fuzz_write_seed(dir, "send", text, (size_t)n);
#undef SEED
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_identity(&id, 40);
    fuzz_seeds(seeds);
    config_defaults(&cfg);
    cfg.roles = ROLE_BOOTSTRAP | ROLE_RELAY | ROLE_CLIENT;
    cfg.client.max_message = 4096; /* small caps: "send" reaches its limits */
    cfg.client.send_queue = 4;
    cfg.client.inbox_messages = 4;
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/ovl-fuzz-control-XXXXXX");
    if (!mkdtemp(sock_dir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", sock_dir);
    atexit(remove_dir);
    if (uv_loop_init(&loop) != 0)
        abort();
    reply = malloc(REPLY_MAX);
    if (!reply)
        abort();
    return 0;
}

/* Every reply is a kvmsg whose first line is ovl-control=1 and whose last
 * is errno=N; recv's replies are no exception. A reply cut short by the
 * harness's own limit is not judged. */
static void check_replies(char *buf, size_t len, bool complete)
{
    size_t pos = 0;

    while (pos < len) {
        size_t m = kv_message_len(buf + pos, len - pos);
        struct kvmsg msg;

        if (m == 0) {
            FUZZ_ASSERT(!complete);
            return;
        }
        FUZZ_ASSERT(kvmsg_parse(&msg, buf + pos, m, SIZE_MAX) == 0);
        FUZZ_ASSERT(msg.n >= 2 && strcmp(msg.pairs[0].key, "ovl-control") == 0 &&
                    strcmp(msg.pairs[0].value, "1") == 0);
        FUZZ_ASSERT(strcmp(msg.pairs[msg.n - 1].key, "errno") == 0);
        kvmsg_free(&msg);
        pos += m;
    }
}

/* Write the input to fd, letting the server read as it goes. */
static void send_all(int fd, const uint8_t *data, size_t size)
{
    size_t off = 0;
    unsigned stuck = 0;

    while (off < size && stuck < MAX_POLLS) {
        ssize_t w = write(fd, data + off, size - off);

        if (w > 0) {
            off += (size_t)w;
            stuck = 0;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return; /* the server hung up (a request too big): fine */
        uv_run(&loop, UV_RUN_NOWAIT);
        stuck++;
    }
}

/* Poll the loop and read replies until the server closes or goes quiet;
 * return how many bytes were kept in reply, with *eof set when it closed. */
static size_t collect(int fd, bool *eof)
{
    size_t len = 0;
    unsigned quiet = 0;
    char sink[4096];

    *eof = false;
    for (unsigned polls = 0; polls < MAX_POLLS && quiet < QUIET_POLLS; polls++) {
        bool got = false;
        ssize_t r;

        uv_run(&loop, UV_RUN_NOWAIT);
        while ((r = read(fd, len < REPLY_MAX ? reply + len : sink,
                         len < REPLY_MAX ? REPLY_MAX - len : sizeof(sink))) > 0) {
            if (len < REPLY_MAX)
                len += (size_t)r;
            got = true;
        }
        if (r == 0) {
            *eof = true;
            break;
        }
        quiet = got ? 0 : quiet + 1;
    }
    return len;
}

static int connect_to_server(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        abort();
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        abort();
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct node n;
    struct dir *d;
    struct relay *r;
    struct client *c;
    struct control *ctl;
    size_t len;
    bool eof;
    int fd;

    fuzz_begin();
    memset(&n, 0, sizeof(n));
    log_init(&n.log, "fuzz_control", OVL_LOG_ERROR, false);
    FUZZ_ASSERT(node_init(&n, &loop, &cfg.opts, &id, cfg.roles) == 0);
    n.app_stop = on_app_stop;
    FUZZ_ASSERT(dir_init(&n, &cfg.dir, NULL, 0, &d) == 0);
    FUZZ_ASSERT(relay_init(&n, &cfg.relay, &r) == 0);
    FUZZ_ASSERT(client_init(&n, &cfg.client, &c) == 0);
    FUZZ_ASSERT(control_start(&n, sock_path, &ctl) == 0);
    control_set_client_opts(ctl, &cfg.client);

    fd = connect_to_server();
    send_all(fd, data, size);
    shutdown(fd, SHUT_WR);
    len = collect(fd, &eof);
    check_replies(reply, len, eof && len < REPLY_MAX);
    close(fd);

    /* ovld's way down: roles first, then the control server and the node;
     * the loop ends once every handle's close callback has run. */
    client_stop(c);
    relay_stop(r);
    dir_stop(d);
    control_stop(ctl);
    node_stop(&n);
    uv_run(&loop, UV_RUN_DEFAULT);
    client_free(c);
    relay_free(r);
    dir_free(d);
    n.client = NULL;
    n.relay = NULL;
    n.dir = NULL;
    node_free(&n);
    log_close(&n.log);
    return 0;
}
