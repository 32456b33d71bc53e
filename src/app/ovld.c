/* ovld.c - the ovl daemon: config, identity, loop, signals, control socket,
 * and the roles (directory on every node, relay and client when enabled). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "app/config.h"
#include "app/ovld.h"
#include "app/sdnotify.h"
#include "chain/relay.h"
#include "client/client.h"
#include "control/control.h"
#include "control/mhttp.h"
#include "core/node_run.h"
#include "core/transport.h"
#include "dir/dir.h"
#include "ovl_config.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ovld [-c FILE] [-t] [--print-id]\n"
            "       ovld -V | -h\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "  -t, --test-config   check the configuration and exit\n"
            "      --print-id      print this node's ID (creating its key) and exit\n"
            "  -V, --version       print the version and compiled-in transports\n"
            "  -h, --help          show this help\n"
            "See ovld(8) and ovld.conf(5).\n",
            OVL_DEFAULT_CONFIG);
}

/* Stop everything the loop waits on; uv_run returns once all closes ran. */
static void ovld_stop(struct node *n)
{
    struct ovld *o = n->app;
    unsigned i;

    if (o->stopping)
        return;
    o->stopping = true;
    log_info(&n->log, "shutting down");
    (void)sdnotify_send(&o->sd, "STOPPING=1");
    sdnotify_watchdog_stop(&o->sd);
    for (i = 0; i < o->n_sig; i++)
        uv_close((uv_handle_t *)&o->sig[i], NULL);
    /* Users of a role first, so each stop still finds what it relies on. */
    if (n->client)
        client_stop(n->client);
    if (n->relay)
        relay_stop(n->relay);
    if (n->dir)
        dir_stop(n->dir);
    mhttp_stop(o->mh);
    o->mh = NULL;
    control_stop(o->ctl);
    o->ctl = NULL;
    node_stop(n);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct ovld *o = h->data;

    if (signum == SIGHUP) {
        const char *err;

        (void)ovld_reload(o, NULL, &err); /* it logs what it did, or why not */
        return;
    }
    log_info(&o->node.log, "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    ovld_stop(&o->node);
}

static int start_signals(struct ovld *o)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    unsigned i;

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        int rc = uv_signal_init(&o->loop, &o->sig[i]);

        if (rc)
            return rc;
        o->n_sig++;
        o->sig[i].data = o;
        rc = uv_signal_start(&o->sig[i], on_signal, sigs[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Make data_dir (mode 0700) if it does not exist yet. */
static int ensure_data_dir(const struct ovl_log *lg, const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno == EEXIST && fstatat(AT_FDCWD, dir, &st, 0) == 0 && S_ISDIR(st.st_mode))
        return 0;
    log_error(lg, "cannot create data directory %s: %s", dir, strerror(errno));
    return -errno;
}

static int load_identity(struct ovld *o, struct ovl_identity *id)
{
    char path[PATH_MAX + 32];
    int rc;

    if (ensure_data_dir(&o->node.log, o->cfg.data_dir) != 0)
        return EXIT_RUNTIME;
    snprintf(path, sizeof(path), "%s/identity.key", o->cfg.data_dir);
    rc = ovl_identity_load(id, path, true);
    if (rc == OVL_EPERM)
        log_error(&o->node.log,
                  "refusing %s: not a regular file, or readable by others (chmod 600 %s)", path,
                  path);
    else if (rc)
        log_error(&o->node.log, "cannot load identity key %s: %s", path, ovl_strerror(rc));
    return rc ? EXIT_RUNTIME : 0;
}

static void warn_roles(const struct ovld *o)
{
    if (o->cfg.n_bootstraps == 0 && (o->cfg.roles & ROLE_RELAY))
        log_warn(&o->node.log, "no [bootstrap.NAME]: this relay is listed nowhere");
}

/* Log that role (the directory, ...) could not start; return rc. */
static int role_failed(struct node *n, const char *role, int rc)
{
    log_error(&n->log, "cannot start the %s: %s", role, ovl_strerror(rc));
    return rc;
}

/* Create the directory on every node, then the relay and client roles
 * that are configured (the client's code also for a relay's loop cover);
 * each sets its pointer in n. */
static int start_roles(struct ovld *o)
{
    struct node *n = &o->node;
    const struct ovl_config *c = &o->cfg;
    struct client_opts *co;
    struct dir *d;
    struct relay *r;
    struct client *cl;
    int rc = 0;

    if ((rc = dir_init(n, &c->dir, c->bootstraps, c->n_bootstraps, &d)) != 0)
        return role_failed(n, "directory", rc);
    if ((n->roles & ROLE_RELAY) && (rc = relay_init(n, &c->relay, &r)) != 0)
        return role_failed(n, "relay role", rc);
    if (!(co = malloc(sizeof(*co)))) /* large: its services */
        return role_failed(n, "client role", OVL_ENOMEM);
    if (config_client_opts(c, co))
        rc = client_init(n, co, &cl);
    if (rc)
        role_failed(n, (co->flags & CLIENT_O_COVER_ONLY) ? "relay's loop cover" : "client role",
                    rc);
    free(co);
    return rc;
}

/* "ovlctl reload": ovld_reload. */
static int ovld_reload_cb(void *arg, struct kvbuf *out, const char **err)
{
    return ovld_reload(arg, out, err);
}

/* Open the control socket and the metrics listener, then listen and dial
 * peers and bootstraps. */
static int start_node(struct ovld *o)
{
    struct node *n = &o->node;
    struct peer_spec *dial;
    unsigned n_dial;
    int rc;

    rc = control_start(n, o->cfg.control_socket, &o->ctl);
    if (rc)
        return rc;
    control_set_client_opts(o->ctl, &o->cfg.client);
    control_on_reload(o->ctl, ovld_reload_cb, o);
    if (o->cfg.metrics_listen[0] && (rc = mhttp_start(o->ctl, o->cfg.metrics_listen, &o->mh)) != 0)
        return rc;
    dial = calloc(NODE_MAX_PEERS, sizeof(*dial));
    if (!dial)
        return OVL_ENOMEM;
    n_dial = config_dial_peers(&o->cfg, dial);
    rc = node_start(n, (const char(*)[OVL_URI_MAX])o->cfg.listen, o->cfg.n_listen, dial, n_dial);
    free(dial);
    return rc;
}

/* Release the roles in reverse order of creation; the loop has ended. */
static void free_roles(struct node *n)
{
    client_free(n->client);
    n->client = NULL;
    relay_free(n->relay);
    n->relay = NULL;
    dir_free(n->dir);
    n->dir = NULL;
}

#define NOFILE_SPARE 64 /* descriptors besides links: listeners, control clients, files */

/* Raise the soft RLIMIT_NOFILE toward what max_links needs (at most the
 * hard limit), and say so when that is not enough: past it accepts fail
 * with EMFILE ("too many open files") and dials fail, on a bootstrap the
 * links of its nodes. */
void ovld_fit_nofile(struct ovld *o, uint32_t max_links)
{
    rlim_t need = (rlim_t)max_links + NOFILE_SPARE;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
        log_warn(&o->node.log,
                 "[link] max_links = %u needs %lu file descriptors, and RLIMIT_NOFILE allows "
                 "%lu: links past that will fail (raise the limit: ulimit -n, LimitNOFILE=)",
                 max_links, (unsigned long)need,
                 (unsigned long)(getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 0));
}

#define NOTIFY_FAILED "cannot notify the service manager (NOTIFY_SOCKET): %s"

/* Tell the service manager, if one waits, that the node is up, and start
 * the watchdog it asked for. */
static void tell_ready(struct ovld *o, const char *roles)
{
    char msg[160];
    int rc;

    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=node %s, roles %s", o->node.node_id, roles);
    rc = sdnotify_send(&o->sd, msg);
    if (rc == 0)
        rc = sdnotify_watchdog_start(&o->sd, &o->loop);
    if (rc)
        log_warn(&o->node.log, NOTIFY_FAILED, ovl_strerror(rc));
}

/* Bring the node up on the loop and run until stopped. */
static int run(struct ovld *o, struct ovl_identity *id)
{
    struct node *n = &o->node;
    char roles[64];
    int rc;

    ovld_fit_nofile(o, o->cfg.opts.max_links);
    uv_loop_init(&o->loop);
    o->cfg.opts.state_dir = o->cfg.data_dir;
    rc = node_init(n, &o->loop, &o->cfg.opts, id, o->cfg.roles);
    ovl_identity_wipe(id);
    if (rc) {
        log_error(&n->log, "cannot set up the node: %s", ovl_strerror(rc));
        return EXIT_RUNTIME;
    }
    n->app = o;
    n->app_stop = ovld_stop;
    rc = sdnotify_open(&o->sd, getenv("NOTIFY_SOCKET"), getenv("WATCHDOG_USEC"),
                       getenv("WATCHDOG_PID"));
    if (rc)
        log_warn(&n->log, NOTIFY_FAILED, ovl_strerror(rc));
    warn_roles(o);
    rc = start_signals(o);
    if (rc == 0)
        rc = start_roles(o);
    if (rc == 0)
        rc = start_node(o);
    if (rc == 0) {
        node_roles_format(roles, sizeof(roles), n->roles);
        log_info(&n->log, "ovld %s started: node %s, roles %s, control %s", OVL_VERSION, n->node_id,
                 roles, o->cfg.control_socket);
        tell_ready(o, roles);
    } else {
        log_error(&n->log, "start-up failed: %s", ovl_strerror(rc));
        ovld_stop(n);
    }
    uv_run(&o->loop, UV_RUN_DEFAULT);
    sdnotify_close(&o->sd);
    if (uv_loop_close(&o->loop) != 0)
        log_warn(&n->log, "handles still open at exit");
    free_roles(n);
    node_free(n);
    return rc ? EXIT_RUNTIME : 0;
}

/* Under systemd's StateDirectory=, the data directory is the one it made
 * (the first of STATE_DIRECTORY's paths) unless the file names one. */
void ovld_state_directory(struct ovl_config *c)
{
    const char *sd = getenv("STATE_DIRECTORY");
    size_t n = 0;

    if ((c->flags & CFG_F_DATA_DIR) || !sd || sd[0] != '/')
        return;
    while (sd[n] && sd[n] != ':')
        n++;
    if (n < sizeof(c->data_dir)) {
        memcpy(c->data_dir, sd, n);
        c->data_dir[n] = '\0';
    }
}

/* getopt_long's table, filled in at start-up from the names and letters
 * of the options: as a static table its name pointers would be 192 bytes
 * of RELRO. Only the first, --config, takes an argument. */
static void long_options(struct option lo[6])
{
    const char *name = "config\0test-config\0print-id\0version\0help";

    memset(lo, 0, 6 * sizeof(*lo));
    for (int i = 0; i < 5; i++, name += strlen(name) + 1) {
        lo[i].name = name;
        lo[i].val = "ctpVh"[i];
    }
    lo[0].has_arg = required_argument;
}

int main(int argc, char **argv)
{
    struct option longopts[6];
    const char *cfg_path = OVL_DEFAULT_CONFIG;
    bool test_only = false, print_id = false;
    char err[CONFIG_ERR_MAX];
    struct ovl_identity id;
    struct ovld *o;
    int opt, rc;

    long_options(longopts);
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cfg_path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'p':
            print_id = true;
            break;
        case 'V':
            fprintf(stdout, "ovld %s (transports: %s)\n", OVL_VERSION, tp_names());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    o = calloc(1, sizeof(*o));
    if (!o || ovl_crypto_init() != 0) {
        /* A format, or gcc makes this fputs: one library import more. */
        fprintf(stderr, "ovld: %s\n", "cannot initialise (memory or libsodium)");
        free(o);
        return EXIT_RUNTIME;
    }
    if (config_load(&o->cfg, cfg_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "ovld: %s\n", err);
        free(o);
        return EXIT_USAGE;
    }
    ovld_state_directory(&o->cfg);
    if (!print_id && config_check_roles(&o->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "ovld: %s\n", err);
        free(o);
        return EXIT_USAGE;
    }
    if (test_only) {
        fprintf(stdout, "%s: configuration OK\n", cfg_path);
        free(o);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_init(&o->node.log, "ovld", o->cfg.log_level, o->cfg.syslog);
    rc = load_identity(o, &id);
    if (rc == 0 && print_id) {
        char nid[OVL_NODE_ID_LEN + 1];

        node_id_format(nid, id.pk);
        fprintf(stdout, "%s\n", nid);
        ovl_identity_wipe(&id);
    } else if (rc == 0) {
        rc = run(o, &id);
    }
    log_close(&o->node.log);
    free(o);
    return rc;
}
