/* dirstore.c - the last good relay list, kept on disk.
 *
 * A node with bootstraps (not one itself) keeps the last relay list it
 * verified, the bootstrap's signed bytes as they came, in
 * <data_dir>/relays (lib/statefile.h: written atomically from the loop,
 * mode 0600). At start dir.c reads it back and dirreply.c verifies it
 * again against each configured bootstrap's key, so a file written under
 * another configuration, or changed on disk, is worth nothing. Until its
 * document expires it answers dir_request_list when no bootstrap does.
 *
 * Writes are bounded: a newer list is written at once when none was, and
 * otherwise at most once per DIR_STORE_GAP_MS or a quarter of the list's
 * lifetime, whichever is shorter, so the copy on disk stays well inside
 * its lifetime without writing every list a client fetches.
 */
#include <stdlib.h>
#include <string.h>

#include "dir/dir_int.h"

#define DIR_STORE_GAP_MS 60000u
#define DIR_STORE_NAME   "relays"

/* Prepare the file and read what it holds. */
int dir_store_open(struct dir *d, uint8_t **buf, size_t *len)
{
    int rc;

    *buf = NULL;
    *len = 0;
    rc = statefile_init(&d->store, d->n->loop, d->n->opts.state_dir, DIR_STORE_NAME);
    if (rc)
        return rc;
    return statefile_read(&d->store, DOC_MAX_LEN, buf, len);
}

/* Keep raw on disk if it is newer than what is there and the last write
 * is old enough, or if it names more relays: a node's first list may have
 * been signed before the last relays registered, and the fallback must not
 * stay that thin for a minute (a restart with every bootstrap down would
 * find too few relays for a chain). Writes stay bounded: each one that
 * comes inside the gap needs a list longer than the last one written. */
void dir_store_save(struct dir *d, const uint8_t *raw, size_t len, uint64_t published_ms,
                    uint64_t expires_ms, unsigned relays)
{
    uint64_t now = clock_now_ms(), gap = DIR_STORE_GAP_MS;

    if (!d->store.path || published_ms <= d->store_published_ms)
        return; /* nothing kept (no data_dir), or nothing newer */
    if (expires_ms > published_ms && (expires_ms - published_ms) / 4 < gap)
        gap = (expires_ms - published_ms) / 4;
    if (d->store_saved_ms && now - d->store_saved_ms < gap && relays <= d->store_relays)
        return;
    if (statefile_write(&d->store, raw, len) != 0)
        return; /* out of memory: a later list tries again */
    d->store_saved_ms = now;
    d->store_published_ms = published_ms;
    d->store_relays = relays;
    d->st.lists_saved++;
}

/* Free the file's state (after the loop ended). */
void dir_store_free(struct dir *d)
{
    statefile_free(&d->store); /* a zeroed one too: nothing to free */
}
