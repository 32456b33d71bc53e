/* encode.c - hex, RFC 4648 base32 (lowercase, unpadded) and node IDs. */
#include "lib/encode.h"

#include <stdint.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";
static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Write 2*n lowercase hex digits and a NUL to out; OVL_ETOOBIG if outlen is short. */
int enc_hex(char *out, size_t outlen, const uint8_t *in, size_t n)
{
    if (!out || (n && !in))
        return OVL_EINVAL;
    if (n > (SIZE_MAX - 1) / 2 || outlen < 2 * n + 1)
        return OVL_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode exactly n bytes from the hex string in (exactly 2*n digits). */
int dec_hex(uint8_t *out, size_t n, const char *in)
{
    if (!out || !in || n > SIZE_MAX / 2)
        return OVL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        /* A NUL yields -1 here, so a short string stops before reading past it. */
        int hi = hex_value(in[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(in[2 * i + 1]);
        if (lo < 0)
            goto fail;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (in[2 * n] != '\0')
        goto fail;
    return 0;
fail:
    memset(out, 0, n);
    return OVL_EINVAL;
}

static size_t b32_len(size_t n)
{
    return n / 5 * 8 + (n % 5 * 8 + 4) / 5;
}

/* Write the lowercase unpadded base32 of in and a NUL; OVL_ETOOBIG if short. */
int enc_base32(char *out, size_t outlen, const uint8_t *in, size_t n)
{
    if (!out || (n && !in))
        return OVL_EINVAL;
    if (n > SIZE_MAX / 2 || outlen < b32_len(n) + 1)
        return OVL_ETOOBIG;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | in[i]) & 0xfff; /* never more than 12 live bits */
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 0x1f];
        }
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 0x1f];
    out[o] = '\0';
    return 0;
}

static int b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

/* Decode exactly n bytes from unpadded base32 (case-insensitive); rejects
 * wrong length, bad characters and non-zero trailing bits. */
int dec_base32(uint8_t *out, size_t n, const char *in)
{
    if (!out || !in || n > SIZE_MAX / 2)
        return OVL_EINVAL;
    size_t len = b32_len(n);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b32_value(in[i]); /* -1 at a NUL: stops before reading past it */
        if (v < 0)
            goto fail;
        acc = (acc << 5 | (uint32_t)v) & 0xfff; /* at most 12 live bits */
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero so every byte string has one encoding. */
    if (in[len] != '\0' || (acc & ((1u << bits) - 1)) != 0)
        goto fail;
    return 0;
fail:
    memset(out, 0, n);
    return OVL_EINVAL;
}

/* Format the node ID of an Ed25519 public key into out (53 bytes with NUL). */
void node_id_format(char out[OVL_NODE_ID_LEN + 1], const uint8_t pk[32])
{
    if (enc_base32(out, OVL_NODE_ID_LEN + 1, pk, 32) != 0)
        out[0] = '\0';
}

/* Parse a node ID back into the Ed25519 public key; OVL_EINVAL if malformed. */
int node_id_parse(uint8_t pk[32], const char *id)
{
    return dec_base32(pk, 32, id);
}
