/* htab.h - uthash, with its hash function out of line.
 *
 * Include this instead of <uthash.h>. uthash expands its hash function
 * inside every HASH_ADD and HASH_FIND; one shared function keeps the
 * daemon small (the size budget) and gives every table the same hash:
 * SipHash-2-4 (libsodium's crypto_shorthash). Its key is fixed, so the
 * tables rely on their caps, not on secrecy, against colliding keys.
 *
 * For the same reason HASH_ADD, HASH_FIND and HASH_DEL call one copy each
 * of uthash's code (htab.c) instead of expanding it: ~1 KB per table.
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

/* HASH_ADD_KEYPTR: add add, whose handle is ahh, to the table of head;
 * return the new head. Out of memory leaves add out (ahh->tbl NULL). */
void *ovl_htab_add(void *head, void *add, UT_hash_handle *ahh, const void *key, unsigned keylen);

/* HASH_FIND in the table tbl: the element with that key, or NULL. */
void *ovl_htab_find(const UT_hash_table *tbl, const void *key, unsigned keylen);

/* HASH_DELETE_HH: take the element of handle del out of the table of head;
 * return the new head (NULL once the table is empty and freed). */
void *ovl_htab_delete(void *head, UT_hash_handle *del);

#undef HASH_FIND
#define HASH_FIND(hh, head, keyptr, keylen, out)                                                   \
    DECLTYPE_ASSIGN(out,                                                                           \
                    (head) ? ovl_htab_find((head)->hh.tbl, (keyptr), (unsigned)(keylen)) : NULL)
#undef HASH_ADD_KEYPTR
#define HASH_ADD_KEYPTR(hh, head, keyptr, keylen_in, add)                                          \
    DECLTYPE_ASSIGN(head, ovl_htab_add((head), (add), &(add)->hh, (keyptr), (unsigned)(keylen_in)))
#undef HASH_DELETE_HH
#define HASH_DELETE_HH(hh, head, delptrhh)                                                         \
    DECLTYPE_ASSIGN(head, ovl_htab_delete((head), (delptrhh)))

#endif
