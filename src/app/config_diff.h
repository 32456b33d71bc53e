/* config_diff.h - what a reload compares: the running configuration and
 * the one just read, key by key (reference: docs/CONFIG.md, "Reload").
 *
 * Each key of cfg_keys[] names its field of struct ovl_config and what a
 * change of it takes (key_def.reload, enum cfg_reload): a restart, or the
 * reload steps that apply it. The diff is pure: it reads two
 * configurations and says which keys differ; the app (reload.c) applies
 * them. Private to src/app/ (and its tests).
 */
#ifndef OVL_APP_CONFIG_DIFF_H
#define OVL_APP_CONFIG_DIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "app/config.h"
#include "app/config_int.h"

struct cfg_diff {
    uint8_t changed[CFG_KEY_COUNT]; /* 1 when key i (cfg_keys[i]) differs */
    unsigned n_changed;
    unsigned steps; /* the enum cfg_reload bits of the keys that differ */
};

/* Compare run (the running configuration) with next, key by key, into d. */
void cfg_diff(const struct ovl_config *run, const struct ovl_config *next, struct cfg_diff *d);

/* Put back into next run's value of every changed key whose reload bits
 * meet mask (RL_RESTART: the keys that take a restart; a step's bit: the
 * keys of a step that failed), so that next is what runs afterwards. */
void cfg_diff_keep(struct ovl_config *next, const struct ovl_config *run, const struct cfg_diff *d,
                   unsigned mask);

/* Call fn(arg, name) for each changed key whose reload bits meet mask and
 * not skip, in the table's order: "section.key" ("log.level",
 * "socks.listen"), and for a named section each NAME that differs, once:
 * "service.web (added)", "bootstrap.b2 (removed)", "peer.p1" (changed).
 * Return how many. */
unsigned cfg_diff_names(const struct cfg_diff *d, const struct ovl_config *run,
                        const struct ovl_config *next, unsigned mask, unsigned skip,
                        void (*fn)(void *arg, const char *name), void *arg);

#endif
