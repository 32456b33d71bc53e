/* lines.h - the pure part of choosing a chain for a SOCKS stream
 * (docs/PROTOCOL.md 19.13): isolation keys of SOCKS credentials, and
 * which exits take a target, by their published policies. No state, no
 * I/O; lines.c builds the client's lines of chains on them.
 */
#ifndef OVL_CLIENT_LINES_H
#define OVL_CLIENT_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/stream.h"
#include "dir/desc.h"

#define CLIENT_CLASS_KEY 16 /* bytes of an isolation key */

/* Write into key the isolation key of SOCKS credentials user (ulen bytes)
 * and pass (plen), at most 255 bytes each: a hash keyed with secret, so
 * neither the key nor a label made of it tells the credentials to anyone
 * without the secret. Equal credentials give equal keys; any other pair
 * (a byte moved from one to the other included) another key. */
void lines_class_key(const uint8_t secret[32], const uint8_t *user, size_t ulen,
                     const uint8_t *pass, size_t plen, uint8_t key[CLIENT_CLASS_KEY]);

/* True when exit d (a descriptor from the relay list) takes a stream to
 * t: an exit whose policy accepts t's address and port, or for a name
 * some address on its port; never an address that is not public unless
 * allow_private (the exit refuses those itself, docs/PROTOCOL.md 20.5). */
bool lines_accepts(const struct desc *d, const struct stream_target *t, bool allow_private);

/* Draw one of exits (n) that takes t, as relays are drawn (select.h:
 * uniform, or with by_capacity weighted): its index, -1 when none takes
 * t, or OVL_ENOMEM. */
int lines_pick_exit(const struct desc *exits, unsigned n, const struct stream_target *t,
                    bool allow_private, bool by_capacity);

#endif
