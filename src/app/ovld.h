/* ovld.h - what the daemon's two files share: ovld.c (main, signals,
 * start-up and shutdown) and reload.c (SIGHUP and "ovlctl reload"). */
#ifndef OVL_APP_OVLD_H
#define OVL_APP_OVLD_H

#include <stdbool.h>

#include <uv.h>

#include "app/config.h"
#include "app/sdnotify.h"
#include "control/control.h"
#include "core/node.h"

struct mhttp;

/* Everything the daemon owns; one per process, on the heap. */
struct ovld {
    uv_loop_t loop;
    struct node node;
    struct ovl_config cfg; /* what runs: the file as read, but keys that take a restart */
    uv_signal_t sig[3];
    unsigned n_sig;
    struct control *ctl;
    struct sdnotify sd; /* the service manager, when one waits for READY=1 */
    struct mhttp *mh;   /* [metrics] listen, when set */
    bool stopping;
    char reload_err[CONFIG_ERR_MAX]; /* why the last reload was refused */
};

/* Under systemd's StateDirectory=, make the data directory the one it
 * made unless the file names one (ovld.c): at start and on every reload. */
void ovld_state_directory(struct ovl_config *c);

/* Raise the soft RLIMIT_NOFILE toward what max_links links need (ovld.c). */
void ovld_fit_nofile(struct ovld *o, uint32_t max_links);

/* Read o->cfg.path again and apply it (reload.c), between RELOADING=1 and
 * READY=1 to the service manager: check the whole file
 * first (a file that does not hold is refused, logged and counted, and
 * nothing changes), then take every changed key that may change while the
 * node runs, the layers in order; a key that takes a restart keeps its
 * running value, with a warning. With out, add the report: config=PATH,
 * then changed=KEY, restart=KEY, failed=KEY and failure=STEP: WHY lines.
 * 0, or OVL_EINVAL / OVL_ENOENT / OVL_ENOMEM for a refused file, with *err
 * the reason ("path:line: message"), kept in o until the next reload. */
int ovld_reload(struct ovld *o, struct kvbuf *out, const char **err);

#endif
