/* htab.h - uthash, with its hash function out of line.
 *
 * Include this instead of <uthash.h>. uthash expands its hash function
 * inside every HASH_ADD and HASH_FIND; one shared function keeps the
 * daemon small (the size budget) and gives every table the same hash:
 * SipHash-2-4 (libsodium's crypto_shorthash). Its key is fixed, so the
 * tables rely on their caps, not on secrecy, against colliding keys.
 */
#ifndef OVL_LIB_HTAB_H
#define OVL_LIB_HTAB_H

#include <stddef.h>
#include <stdint.h>

/* Return the 32-bit hash uthash buckets len bytes of key by. */
uint32_t ovl_htab_hash(const void *key, size_t len);

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = ovl_htab_hash((keyptr), (keylen)))
/* Out of memory leaves the item out (a caller that cares compares
 * HASH_COUNT before and after) instead of exiting the daemon. */
#define HASH_NONFATAL_OOM 1

#include <uthash.h>

#endif
