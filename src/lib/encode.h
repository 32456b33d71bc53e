/* encode.h - hex and base32 text encodings, and printable node IDs.
 *
 * A node ID is the lowercase RFC 4648 base32 (no padding) of the node's
 * 32-byte Ed25519 public key: 52 characters that decode back to the key, so
 * anyone holding an ID can encrypt to it without a directory lookup.
 */
#ifndef OVL_LIB_ENCODE_H
#define OVL_LIB_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define OVL_NODE_ID_LEN 52 /* characters, without the terminating NUL */

/* Write 2*n lowercase hex digits and a NUL to out; OVL_ETOOBIG if outlen is short. */
int enc_hex(char *out, size_t outlen, const uint8_t *in, size_t n) OVL_WUR;

/* Decode exactly n bytes from the hex string in (case-insensitive, no
 * separators, exactly 2*n digits); OVL_EINVAL otherwise. */
int dec_hex(uint8_t *out, size_t n, const char *in) OVL_WUR;

/* Write the lowercase unpadded base32 of in and a NUL; OVL_ETOOBIG if short. */
int enc_base32(char *out, size_t outlen, const uint8_t *in, size_t n) OVL_WUR;

/* Decode exactly n bytes from unpadded base32 (case-insensitive); rejects
 * wrong length, bad characters and non-zero trailing bits with OVL_EINVAL. */
int dec_base32(uint8_t *out, size_t n, const char *in) OVL_WUR;

/* Format the node ID of an Ed25519 public key into out (53 bytes with NUL). */
void node_id_format(char out[OVL_NODE_ID_LEN + 1], const uint8_t pk[32]);

/* Parse a node ID back into the Ed25519 public key; OVL_EINVAL if malformed. */
int node_id_parse(uint8_t pk[32], const char *id) OVL_WUR;

#endif
