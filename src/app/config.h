/* config.h - ovld's INI configuration (reference: docs/CONFIG.md).
 *
 *   [node]     roles, data_dir, listen, control_socket, aead
 *   [log]      level, syslog
 *   [link]     handshake_timeout, idle_timeout, max_links, send_queue,
 *              rekey_cells, reconnect_min, reconnect_max
 *   [peer.NAME] address, id     (one section per peer to dial)
 *
 * Unknown sections or keys, bad values and duplicates are rejected with a
 * "file:line: message" error.
 */
#ifndef OVL_APP_CONFIG_H
#define OVL_APP_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/node.h"
#include "lib/err.h"
#include "lib/log.h"

#define CONFIG_ERR_MAX 512

struct ovl_config {
    char path[PATH_MAX];
    unsigned roles;                 /* enum node_role bits; default relay */
    char data_dir[PATH_MAX];
    char control_socket[PATH_MAX];
    char listen[NODE_MAX_LISTEN][OVL_URI_MAX];
    unsigned n_listen;
    enum ovl_log_level log_level;   /* default info */
    bool syslog;                    /* default false */
    struct node_opts opts;          /* [link] and aead */
    struct peer_spec peers[NODE_MAX_PEERS];
    unsigned n_peers;
};

/* Fill c with the documented defaults (no peers, no listen address). */
void config_defaults(struct ovl_config *c);

/* Read path into c (defaults first). On failure return OVL_EINVAL (or
 * OVL_ENOENT when the file cannot be opened) with "path:line: message" in
 * err; c is then unspecified. */
int config_load(struct ovl_config *c, const char *path, char *err, size_t errlen) OVL_WUR;

/* Parse a config held in memory (name is used in messages); for tests. */
int config_parse_string(struct ovl_config *c, const char *name, const char *text, char *err,
                        size_t errlen) OVL_WUR;

/* Format roles as "bootstrap,relay,client" (only those set) into out. */
void config_roles_format(char *out, size_t outlen, unsigned roles);

#endif
