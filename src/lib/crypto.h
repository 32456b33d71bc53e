/* crypto.h - the one wrapper around libsodium that every other module uses.
 *
 * Primitives: Ed25519 identities, X25519 key agreement, an AEAD that is
 * AES-256-GCM where the CPU has it and ChaCha20-Poly1305-IETF otherwise,
 * BLAKE2b for hashing and key derivation. Every function that can fail is
 * warn_unused_result; every secret it touches is wiped with sodium_memzero.
 */
#ifndef OVL_LIB_CRYPTO_H
#define OVL_LIB_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "ovl_config.h"

#include "lib/err.h"

#define OVL_ED25519_PK   32
#define OVL_ED25519_SK   64
#define OVL_ED25519_SEED 32
#define OVL_SIG_LEN      64
#define OVL_X25519_LEN   32
#define OVL_AEAD_KEY     32
#define OVL_AEAD_NONCE   12
#define OVL_AEAD_TAG     16
#define OVL_HASH_LEN     32

/* AEAD suites; the values are bits so a set of suites fits in a mask. */
enum ovl_aead_suite {
    OVL_AEAD_AES256GCM = 1u << 0,
    OVL_AEAD_CHACHA20POLY1305 = 1u << 1,
};
#define OVL_AEAD_ALL (OVL_AEAD_AES256GCM | OVL_AEAD_CHACHA20POLY1305)

/* A node's long-term Ed25519 identity. sk is secret: wipe with ovl_identity_wipe. */
struct ovl_identity {
    uint8_t pk[OVL_ED25519_PK];
    uint8_t sk[OVL_ED25519_SK];
};

/* A keyed AEAD context. For AES-256-GCM the expanded key schedule is kept so
 * that no per-cell key setup is needed: in builds with GnuTLS (those with
 * QUIC) in a GnuTLS cipher handle, whose AES-GCM takes half the time of
 * libsodium 1.0.18's, elsewhere in libsodium's state. A handle is memory
 * of its own, so a context is moved (copied, then the original zeroed),
 * never copied, and every initialised one is ended with ovl_aead_wipe.
 * Secret: wipe with ovl_aead_wipe. */
struct ovl_aead {
    enum ovl_aead_suite suite;
    union {
#if OVL_HAVE_QUIC
        void *gt; /* gnutls_aead_cipher_hd_t */
#else
        crypto_aead_aes256gcm_state aes;
#endif
        uint8_t key[OVL_AEAD_KEY];
    } u;
};

/* Bytes an AES-256-GCM context holds besides struct ovl_aead, for the
 * accounts of what chains and links hold. */
#define OVL_AEAD_HEAP (OVL_HAVE_QUIC ? 768 : 0)

/* Initialise libsodium; call once before anything else in this header. */
int ovl_crypto_init(void) OVL_WUR;

/* Return the suites this machine can run: AES-256-GCM needs AES-NI/PCLMUL. */
uint32_t ovl_aead_available(void);

/* Return the preferred suite in mask (AES-256-GCM first) or 0 if none. */
enum ovl_aead_suite ovl_aead_pick(uint32_t mask);

/* Return "aes256gcm" or "chacha20poly1305" ("none" for anything else). */
const char *ovl_aead_name(enum ovl_aead_suite suite);

/* Parse "auto" (every available suite), "aes256gcm" or "chacha20poly1305"
 * into a suite mask; OVL_EINVAL for other names, OVL_EUNSUPP for a suite this
 * machine cannot run. */
int ovl_aead_parse(const char *s, uint32_t *mask) OVL_WUR;

/* Fill id with a fresh random identity. */
int ovl_identity_generate(struct ovl_identity *id) OVL_WUR;

/* Derive the identity from a 32-byte seed (RFC 8032 "secret key"). */
int ovl_identity_from_seed(struct ovl_identity *id, const uint8_t seed[OVL_ED25519_SEED]) OVL_WUR;

/* Load the identity seed from path. When the file does not exist and create
 * is true, generate one and write it with mode 0600 (O_EXCL, fsync).
 * Refuse (OVL_EPERM) a file readable or writable by group or others, and
 * reject (OVL_EINVAL) one that is not exactly 32 bytes. The file holds the raw
 * 32-byte seed. Blocking file I/O: call before the loop runs. */
int ovl_identity_load(struct ovl_identity *id, const char *path, bool create) OVL_WUR;

/* Wipe the secret half of id. */
void ovl_identity_wipe(struct ovl_identity *id);

/* Sign msg with id; sig receives OVL_SIG_LEN bytes. */
int ovl_sign(const struct ovl_identity *id, const uint8_t *msg, size_t len,
             uint8_t sig[OVL_SIG_LEN]) OVL_WUR;

/* Verify sig over msg under pk; OVL_ECRYPTO if it does not verify. */
int ovl_verify(const uint8_t pk[OVL_ED25519_PK], const uint8_t *msg, size_t len,
               const uint8_t sig[OVL_SIG_LEN]) OVL_WUR;

/* Make a fresh X25519 key pair. */
void ovl_x25519_keypair(uint8_t pk[OVL_X25519_LEN], uint8_t sk[OVL_X25519_LEN]);

/* Compute the X25519 shared secret; OVL_ECRYPTO for a low-order peer key
 * (all-zero result). out is wiped on failure. */
int ovl_x25519(uint8_t out[OVL_X25519_LEN], const uint8_t sk[OVL_X25519_LEN],
               const uint8_t pk[OVL_X25519_LEN]) OVL_WUR;

/* Convert an Ed25519 public key to its X25519 (Montgomery) form. */
int ovl_ed_pk_to_x25519(uint8_t x[OVL_X25519_LEN], const uint8_t ed[OVL_ED25519_PK]) OVL_WUR;

/* Convert an Ed25519 secret key to its X25519 form (secret: wipe after use). */
int ovl_ed_sk_to_x25519(uint8_t x[OVL_X25519_LEN], const uint8_t ed_sk[OVL_ED25519_SK]) OVL_WUR;

/* Key an AEAD context with suite (exactly one suite bit); a holds nothing
 * (zeroed or wiped). OVL_EUNSUPP if the suite is not available here,
 * OVL_ENOMEM if its memory could not be had; a is zeroed on failure. */
int ovl_aead_init(struct ovl_aead *a, enum ovl_aead_suite suite,
                  const uint8_t key[OVL_AEAD_KEY]) OVL_WUR;

/* Wipe the key material in a and release its memory; a zeroed a is fine. */
void ovl_aead_wipe(struct ovl_aead *a);

/* Encrypt len bytes of in to out (len + OVL_AEAD_TAG bytes; in == out is
 * allowed) binding ad. */
int ovl_aead_seal(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                  const uint8_t *ad, size_t adlen, const uint8_t nonce[OVL_AEAD_NONCE]) OVL_WUR;

/* Decrypt len bytes (ciphertext with tag) of in to out (len - OVL_AEAD_TAG
 * bytes; in == out allowed). OVL_ECRYPTO if the tag fails (out is wiped),
 * OVL_EINVAL if len < OVL_AEAD_TAG. */
int ovl_aead_open(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                  const uint8_t *ad, size_t adlen, const uint8_t nonce[OVL_AEAD_NONCE]) OVL_WUR;

/* ovl_aead_seal with the tag written to tag instead of after the
 * ciphertext (in == out allowed). */
int ovl_aead_seal_detached(const struct ovl_aead *a, uint8_t *out, uint8_t tag[OVL_AEAD_TAG],
                           const uint8_t *in, size_t len, const uint8_t *ad, size_t adlen,
                           const uint8_t nonce[OVL_AEAD_NONCE]) OVL_WUR;

/* Decrypt len bytes of in, whose tag is at tag, to out (len bytes; in ==
 * out allowed, the tag apart from both). OVL_ECRYPTO if the tag fails (out
 * is wiped). */
int ovl_aead_open_detached(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                           const uint8_t tag[OVL_AEAD_TAG], const uint8_t *ad, size_t adlen,
                           const uint8_t nonce[OVL_AEAD_NONCE]) OVL_WUR;

/* Build the 96-bit nonce for counter ctr: four zero bytes then ctr little-endian. */
void ovl_nonce(uint8_t nonce[OVL_AEAD_NONCE], uint64_t ctr);

/* out = BLAKE2b-256(a || b); b may be NULL with blen 0; out may alias
 * a or b. */
void ovl_hash2(uint8_t out[OVL_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
               size_t blen);

/* Two-output KDF (HKDF's shape with keyed BLAKE2b-256 in place of HMAC):
 *   t = B(key=ck, ikm); out1 = B(key=t, 0x01); out2 = B(key=t, out1 || 0x02)
 * out2 may be NULL. Outputs may alias ck. */
void ovl_kdf2(uint8_t out1[OVL_HASH_LEN], uint8_t out2[OVL_HASH_LEN],
              const uint8_t ck[OVL_HASH_LEN], const uint8_t *ikm, size_t ikmlen);

/* out = B(key=key, label): a one-way step used to ratchet keys. out may alias key. */
void ovl_kdf_label(uint8_t out[OVL_HASH_LEN], const uint8_t key[OVL_HASH_LEN], const char *label);

/* Constant-time comparison of two secrets; true when equal. */
bool ovl_equal(const void *a, const void *b, size_t n);

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void ovl_wipe(void *p, size_t n);

/* Fill buf with n cryptographically random bytes. */
void ovl_random(void *buf, size_t n);

/* Return a uniform random integer in [0, upper) (0 when upper < 2). */
uint32_t ovl_random_uniform(uint32_t upper);

/* Return an exponentially distributed delay with mean mean_ms (a Poisson
 * process's gaps), in milliseconds, rounded down and capped at 100 x mean. */
uint32_t ovl_random_exp_ms(uint32_t mean_ms);

#endif
