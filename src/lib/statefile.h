/* statefile.h - small state a node keeps across restarts: the bootstrap's
 * registry, the last relay list it verified, a client's guards.
 *
 * A state file is read whole, once, at start (statefile_read: the loop is
 * not running yet, so a synchronous read blocks nothing) and written
 * atomically while the loop runs: the contents go to "NAME.tmp" (mode
 * 0600), which is synced and renamed over "NAME", through libuv's file
 * requests, so the loop never waits on the disk and a crash leaves the old
 * file or the new one, never half of one.
 *
 * Writes are not queued: a write asked for while one is under way replaces
 * any contents still waiting, and goes out when the current one ends. So a
 * file holds at most two buffers (the one being written and the newest),
 * whatever the rate of writes. A statefile with no directory (dir NULL or
 * empty: unit tests, a node without data_dir) keeps nothing: writes succeed
 * and do nothing, reads find nothing.
 *
 * Lifetime: statefile_free() after the loop has ended (uv_run returns only
 * once every file request finished), so the last contents asked for are on
 * disk by then.
 */
#ifndef OVL_LIB_STATEFILE_H
#define OVL_LIB_STATEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"

struct statefile {
    uv_loop_t *loop;
    char *path, *tmp;     /* NULL: keeps nothing */
    uint8_t *busy, *next; /* being written; waiting (owned, or NULL) */
    size_t busy_len, next_len, off;
    uv_file fd;
    uv_fs_t req;
    unsigned flags;        /* enum statefile_flag */
    uint64_t writes;       /* completed (renamed into place) */
    uint64_t write_errors; /* abandoned on an error (the next write tries again) */
    int last_err;          /* of the last failed write, 0 if none */
};

/* Prepare f for file name in directory dir (either may be NULL: f keeps
 * nothing). OVL_ENOMEM, or OVL_EINVAL for a name holding '/'. */
int statefile_init(struct statefile *f, uv_loop_t *loop, const char *dir, const char *name) OVL_WUR;

/* Read the whole file into *buf (malloc'd, the caller frees) of *len bytes.
 * OVL_ENOENT when it does not exist (or f keeps nothing), OVL_ETOOBIG when
 * it is larger than max, OVL_EPERM when it is not a regular file, a
 * negated errno on a read error. Synchronous: call before the loop runs. */
int statefile_read(const struct statefile *f, size_t max, uint8_t **buf, size_t *len) OVL_WUR;

/* Write buf (len bytes, copied) in place of the file's contents, from the
 * loop. 0 or OVL_ENOMEM; errors of the write itself are counted in f
 * (write_errors, last_err), not reported: the caller writes again later. */
int statefile_write(struct statefile *f, const uint8_t *buf, size_t len) OVL_WUR;

/* Free f's names and buffers (NULL-safe); only once the loop has ended. */
void statefile_free(struct statefile *f);

#endif
