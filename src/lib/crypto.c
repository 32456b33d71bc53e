/* crypto.c - thin, error-checked wrappers over libsodium (and GnuTLS's
 * AES-256-GCM in builds that link it, see crypto.h). */
#include "lib/crypto.h"
#include "lib/htab.h"

#if OVL_HAVE_QUIC
#include <gnutls/crypto.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bytes.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000 /* Linux's; <fcntl.h> has it only with _GNU_SOURCE */
#endif

/* Initialise libsodium; call once before anything else in this header. */
int ovl_crypto_init(void)
{
    /* sodium_init returns 1 when already initialised: that is success too. */
    return sodium_init() < 0 ? OVL_ECRYPTO : 0;
}

/* Return the suites this machine can run: AES-256-GCM needs AES-NI/PCLMUL. */
uint32_t ovl_aead_available(void)
{
    uint32_t mask = OVL_AEAD_CHACHA20POLY1305;
    if (crypto_aead_aes256gcm_is_available())
        mask |= OVL_AEAD_AES256GCM;
    return mask;
}

/* Return the preferred suite in mask (AES-256-GCM first) or 0 if none.
 * Suites this machine cannot run are never picked. */
enum ovl_aead_suite ovl_aead_pick(uint32_t mask)
{
    mask &= ovl_aead_available();
    if (mask & OVL_AEAD_AES256GCM)
        return OVL_AEAD_AES256GCM;
    if (mask & OVL_AEAD_CHACHA20POLY1305)
        return OVL_AEAD_CHACHA20POLY1305;
    return (enum ovl_aead_suite)0;
}

/* Return "aes256gcm" or "chacha20poly1305" ("none" for anything else). */
const char *ovl_aead_name(enum ovl_aead_suite suite)
{
    switch (suite) {
    case OVL_AEAD_AES256GCM:
        return "aes256gcm";
    case OVL_AEAD_CHACHA20POLY1305:
        return "chacha20poly1305";
    default:
        return "none";
    }
}

/* Parse a suite name ("auto", "aes256gcm", "chacha20poly1305") into a mask. */
int ovl_aead_parse(const char *s, uint32_t *mask)
{
    if (!mask)
        return OVL_EINVAL;
    *mask = 0;
    if (!s)
        return OVL_EINVAL;
    uint32_t want;
    if (strcmp(s, "auto") == 0)
        want = ovl_aead_available();
    else if (strcmp(s, "aes256gcm") == 0)
        want = OVL_AEAD_AES256GCM;
    else if (strcmp(s, "chacha20poly1305") == 0)
        want = OVL_AEAD_CHACHA20POLY1305;
    else
        return OVL_EINVAL;
    if ((want & ovl_aead_available()) != want)
        return OVL_EUNSUPP;
    *mask = want;
    return 0;
}

/* Fill id with a fresh random identity. */
int ovl_identity_generate(struct ovl_identity *id)
{
    if (crypto_sign_keypair(id->pk, id->sk) != 0) {
        ovl_identity_wipe(id);
        return OVL_ECRYPTO;
    }
    return 0;
}

/* Derive the identity from a 32-byte seed (RFC 8032 "secret key"). */
int ovl_identity_from_seed(struct ovl_identity *id, const uint8_t seed[OVL_ED25519_SEED])
{
    if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0) {
        ovl_identity_wipe(id);
        return OVL_ECRYPTO;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes; OVL_EINVAL if the file is shorter or longer (it may
 * have changed since fstat). */
static int read_exact(int fd, uint8_t *p, size_t n)
{
    uint8_t extra;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return OVL_EINVAL;
        p += r;
        n -= (size_t)r;
    }
    ssize_t r;
    do
        r = read(fd, &extra, 1);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == 0 ? 0 : OVL_EINVAL;
}

static int seed_read(const char *path, uint8_t seed[OVL_ED25519_SEED])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return OVL_ENOENT;
        if (errno == ELOOP)
            return OVL_EPERM; /* a symlink: someone else may control the target */
        return -errno;
    }
    struct stat st;
    int rc;
    /* ovld calls fstatat for fstat, stat and lstat alike: one import, not three. */
    if (fstatat(fd, "", &st, AT_EMPTY_PATH) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        rc = OVL_EPERM;
        goto out;
    }
    if (st.st_size != OVL_ED25519_SEED) {
        rc = OVL_EINVAL;
        goto out;
    }
    rc = read_exact(fd, seed, OVL_ED25519_SEED);
out:
    close(fd);
    return rc;
}

static int seed_create(const char *path, uint8_t seed[OVL_ED25519_SEED])
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? OVL_EEXIST : -errno;
    randombytes_buf(seed, OVL_ED25519_SEED);
    int rc = write_all(fd, seed, OVL_ED25519_SEED);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path); /* never leave a truncated key behind */
    return rc;
}

/* Load the identity seed from path, creating it (0600) when allowed. */
int ovl_identity_load(struct ovl_identity *id, const char *path, bool create)
{
    uint8_t seed[OVL_ED25519_SEED];
    int rc;
    if (!id || !path)
        return OVL_EINVAL;
    rc = seed_read(path, seed);
    if (rc == OVL_ENOENT && create) {
        rc = seed_create(path, seed);
        if (rc == OVL_EEXIST) /* lost a race with another creator: read theirs */
            rc = seed_read(path, seed);
    }
    if (rc == 0)
        rc = ovl_identity_from_seed(id, seed);
    else
        ovl_identity_wipe(id);
    ovl_wipe(seed, sizeof(seed));
    return rc;
}

/* Wipe the secret half of id. */
void ovl_identity_wipe(struct ovl_identity *id)
{
    if (id)
        sodium_memzero(id->sk, sizeof(id->sk));
}

/* Sign msg with id; sig receives OVL_SIG_LEN bytes. */
int ovl_sign(const struct ovl_identity *id, const uint8_t *msg, size_t len,
             uint8_t sig[OVL_SIG_LEN])
{
    if (crypto_sign_detached(sig, NULL, msg, len, id->sk) != 0) {
        sodium_memzero(sig, OVL_SIG_LEN);
        return OVL_ECRYPTO;
    }
    return 0;
}

/* Verify sig over msg under pk; OVL_ECRYPTO if it does not verify. */
int ovl_verify(const uint8_t pk[OVL_ED25519_PK], const uint8_t *msg, size_t len,
               const uint8_t sig[OVL_SIG_LEN])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : OVL_ECRYPTO;
}

/* Make a fresh X25519 key pair. */
void ovl_x25519_keypair(uint8_t pk[OVL_X25519_LEN], uint8_t sk[OVL_X25519_LEN])
{
    /* crypto_box_keypair is exactly random sk + scalarmult_base, never fails. */
    crypto_box_keypair(pk, sk);
}

/* Compute the X25519 shared secret; OVL_ECRYPTO for a low-order peer key. */
int ovl_x25519(uint8_t out[OVL_X25519_LEN], const uint8_t sk[OVL_X25519_LEN],
               const uint8_t pk[OVL_X25519_LEN])
{
    uint8_t tmp[OVL_X25519_LEN];
    /* libsodium already refuses an all-zero result; check again in case an
     * older build does not, since a zero secret would be public. */
    if (crypto_scalarmult(tmp, sk, pk) != 0 || sodium_is_zero(tmp, sizeof(tmp))) {
        sodium_memzero(tmp, sizeof(tmp));
        sodium_memzero(out, OVL_X25519_LEN);
        return OVL_ECRYPTO;
    }
    memcpy(out, tmp, sizeof(tmp));
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
}

/* Convert an Ed25519 public key to its X25519 (Montgomery) form. */
int ovl_ed_pk_to_x25519(uint8_t x[OVL_X25519_LEN], const uint8_t ed[OVL_ED25519_PK])
{
    if (crypto_sign_ed25519_pk_to_curve25519(x, ed) != 0) {
        sodium_memzero(x, OVL_X25519_LEN);
        return OVL_ECRYPTO;
    }
    return 0;
}

/* Convert an Ed25519 secret key to its X25519 form (secret: wipe after use). */
int ovl_ed_sk_to_x25519(uint8_t x[OVL_X25519_LEN], const uint8_t ed_sk[OVL_ED25519_SK])
{
    if (crypto_sign_ed25519_sk_to_curve25519(x, ed_sk) != 0) {
        sodium_memzero(x, OVL_X25519_LEN);
        return OVL_ECRYPTO;
    }
    return 0;
}

/* ---- AEAD ---- */

/* AES-256-GCM, keyed: GnuTLS's where it is linked (see crypto.h), else
 * libsodium's. Each returns 0 or a negative number. */
#if OVL_HAVE_QUIC
static int aes_init(struct ovl_aead *a, const uint8_t key[OVL_AEAD_KEY])
{
    gnutls_datum_t k = {.data = (unsigned char *)key, .size = OVL_AEAD_KEY};
    gnutls_aead_cipher_hd_t h;

    if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0)
        return OVL_ENOMEM;
    a->u.gt = h;
    return 0;
}

/* The contiguous calls (data || tag) skip the iovec walk of the v2 calls and
 * read in where out lies apart (crypto.h: in == out or apart), so that a
 * framed cell is not copied first. The v2 calls, which work in place, serve a
 * tag that lies apart from the data. */
static int aes_seal(const struct ovl_aead *a, uint8_t *out, uint8_t *tag, const uint8_t *in,
                    size_t len, const uint8_t *ad, size_t adlen, const uint8_t *nonce)
{
    giovec_t d = {.iov_base = out, .iov_len = len}, x = {.iov_base = (void *)ad, .iov_len = adlen};
    size_t tlen = OVL_AEAD_TAG;

    if (tag == out + len) {
        tlen += len;
        return gnutls_aead_cipher_encrypt(a->u.gt, nonce, OVL_AEAD_NONCE, ad, adlen, OVL_AEAD_TAG,
                                          in, len, out, &tlen);
    }
    if (out != in && len)
        memmove(out, in, len);
    return gnutls_aead_cipher_encryptv2(a->u.gt, nonce, OVL_AEAD_NONCE, &x, adlen ? 1 : 0, &d, 1,
                                        tag, &tlen);
}

static int aes_open(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                    const uint8_t *tag, const uint8_t *ad, size_t adlen, const uint8_t *nonce)
{
    giovec_t d = {.iov_base = out, .iov_len = len}, x = {.iov_base = (void *)ad, .iov_len = adlen};
    size_t plen = len;

    if (tag == in + len)
        return gnutls_aead_cipher_decrypt(a->u.gt, nonce, OVL_AEAD_NONCE, ad, adlen, OVL_AEAD_TAG,
                                          in, len + OVL_AEAD_TAG, out, &plen);
    if (out != in && len)
        memmove(out, in, len);
    return gnutls_aead_cipher_decryptv2(a->u.gt, nonce, OVL_AEAD_NONCE, &x, adlen ? 1 : 0, &d, 1,
                                        (void *)tag, OVL_AEAD_TAG);
}
#else
static int aes_init(struct ovl_aead *a, const uint8_t key[OVL_AEAD_KEY])
{
    return crypto_aead_aes256gcm_beforenm(&a->u.aes, key) == 0 ? 0 : OVL_ECRYPTO;
}

static int aes_seal(const struct ovl_aead *a, uint8_t *out, uint8_t *tag, const uint8_t *in,
                    size_t len, const uint8_t *ad, size_t adlen, const uint8_t *nonce)
{
    return crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, NULL, in, len, ad, adlen, NULL,
                                                          nonce, &a->u.aes);
}

static int aes_open(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                    const uint8_t *tag, const uint8_t *ad, size_t adlen, const uint8_t *nonce)
{
    return crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, in, len, tag, ad, adlen, nonce,
                                                          &a->u.aes);
}
#endif

/* Key an AEAD context with exactly one suite; OVL_EUNSUPP if unavailable. */
int ovl_aead_init(struct ovl_aead *a, enum ovl_aead_suite suite, const uint8_t key[OVL_AEAD_KEY])
{
    int rc;

    if (!a || !key)
        return OVL_EINVAL;
    sodium_memzero(a, sizeof(*a));
    switch (suite) {
    case OVL_AEAD_AES256GCM:
        if (!crypto_aead_aes256gcm_is_available())
            return OVL_EUNSUPP;
        /* Expand the key schedule once instead of once per cell. */
        rc = aes_init(a, key);
        if (rc) {
            sodium_memzero(a, sizeof(*a));
            return rc;
        }
        break;
    case OVL_AEAD_CHACHA20POLY1305:
        memcpy(a->u.key, key, OVL_AEAD_KEY);
        break;
    default:
        return OVL_EUNSUPP;
    }
    a->suite = suite;
    return 0;
}

/* Wipe the key material in a and give back what it holds. */
void ovl_aead_wipe(struct ovl_aead *a)
{
    if (!a)
        return;
#if OVL_HAVE_QUIC
    if (a->suite == OVL_AEAD_AES256GCM && a->u.gt)
        gnutls_aead_cipher_deinit(a->u.gt); /* wipes the key schedule too */
#endif
    sodium_memzero(a, sizeof(*a));
}

/* Encrypt len bytes of in to out, the tag to tag, binding ad. */
int ovl_aead_seal_detached(const struct ovl_aead *a, uint8_t *out, uint8_t tag[OVL_AEAD_TAG],
                           const uint8_t *in, size_t len, const uint8_t *ad, size_t adlen,
                           const uint8_t nonce[OVL_AEAD_NONCE])
{
    int rc;

    switch (a->suite) {
    case OVL_AEAD_AES256GCM:
        if (len > crypto_aead_aes256gcm_MESSAGEBYTES_MAX)
            return OVL_ETOOBIG;
        rc = aes_seal(a, out, tag, in, len, ad, adlen, nonce);
        break;
    case OVL_AEAD_CHACHA20POLY1305:
        if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
            return OVL_ETOOBIG;
        rc = crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, NULL, in, len, ad, adlen,
                                                                NULL, nonce, a->u.key);
        break;
    default:
        return OVL_EINVAL;
    }
    return rc == 0 ? 0 : OVL_ECRYPTO;
}

/* Encrypt len bytes of in to out (ciphertext || tag), binding ad. */
int ovl_aead_seal(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                  const uint8_t *ad, size_t adlen, const uint8_t nonce[OVL_AEAD_NONCE])
{
    return ovl_aead_seal_detached(a, out, out + len, in, len, ad, adlen, nonce);
}

/* Decrypt len bytes of in, tag apart, to out; OVL_ECRYPTO and a wiped out
 * if the tag fails. */
int ovl_aead_open_detached(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                           const uint8_t tag[OVL_AEAD_TAG], const uint8_t *ad, size_t adlen,
                           const uint8_t nonce[OVL_AEAD_NONCE])
{
    int rc;

    switch (a->suite) {
    case OVL_AEAD_AES256GCM:
        rc = aes_open(a, out, in, len, tag, ad, adlen, nonce);
        break;
    case OVL_AEAD_CHACHA20POLY1305:
        rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in, len, tag, ad, adlen,
                                                                nonce, a->u.key);
        break;
    default:
        return OVL_EINVAL;
    }
    if (rc != 0) {
        /* Never hand back unauthenticated plaintext. */
        sodium_memzero(out, len);
        return OVL_ECRYPTO;
    }
    return 0;
}

/* Decrypt len bytes (ciphertext || tag) of in to out; OVL_ECRYPTO and a
 * wiped out if the tag fails, OVL_EINVAL if len < OVL_AEAD_TAG. */
int ovl_aead_open(const struct ovl_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                  const uint8_t *ad, size_t adlen, const uint8_t nonce[OVL_AEAD_NONCE])
{
    if (len < OVL_AEAD_TAG)
        return OVL_EINVAL;
    return ovl_aead_open_detached(a, out, in, len - OVL_AEAD_TAG, in + len - OVL_AEAD_TAG, ad,
                                  adlen, nonce);
}

/* Build the 96-bit nonce for counter ctr: four zero bytes then ctr little-endian. */
void ovl_nonce(uint8_t nonce[OVL_AEAD_NONCE], uint64_t ctr)
{
    memset(nonce, 0, 4);
    st_le64(nonce + 4, ctr);
}

/* out = BLAKE2b-256(a || b); b may be NULL with blen 0. */
void ovl_hash2(uint8_t out[OVL_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
               size_t blen)
{
    /* The multi-part hash, whatever the lengths: a hash that failed past
     * some length would be a trap for the next caller (it costs three
     * library imports, about 100 bytes). */
    crypto_generichash_state st;
    uint8_t tmp[OVL_HASH_LEN];

    crypto_generichash_init(&st, NULL, 0, OVL_HASH_LEN);
    if (alen)
        crypto_generichash_update(&st, a, alen);
    if (blen)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, tmp, OVL_HASH_LEN);
    /* out may alias a or b, so write it only at the end. */
    memcpy(out, tmp, OVL_HASH_LEN);
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(tmp, sizeof(tmp));
}

/* Two-output KDF: t = B(ck, ikm); out1 = B(t, 0x01); out2 = B(t, out1 || 0x02). */
void ovl_kdf2(uint8_t out1[OVL_HASH_LEN], uint8_t out2[OVL_HASH_LEN],
              const uint8_t ck[OVL_HASH_LEN], const uint8_t *ikm, size_t ikmlen)
{
    uint8_t t[OVL_HASH_LEN], o1[OVL_HASH_LEN], o2[OVL_HASH_LEN];
    uint8_t in2[OVL_HASH_LEN + 1];
    const uint8_t one = 0x01;

    crypto_generichash(t, sizeof(t), ikm, ikmlen, ck, OVL_HASH_LEN);
    crypto_generichash(o1, sizeof(o1), &one, 1, t, sizeof(t));
    memcpy(in2, o1, OVL_HASH_LEN);
    in2[OVL_HASH_LEN] = 0x02;
    crypto_generichash(o2, sizeof(o2), in2, sizeof(in2), t, sizeof(t));
    /* Outputs may alias ck (a chaining key updated in place): copy last. */
    memcpy(out1, o1, OVL_HASH_LEN);
    if (out2)
        memcpy(out2, o2, OVL_HASH_LEN);
    sodium_memzero(t, sizeof(t));
    sodium_memzero(o1, sizeof(o1));
    sodium_memzero(o2, sizeof(o2));
    sodium_memzero(in2, sizeof(in2));
}

/* out = B(key=key, label): a one-way step used to ratchet keys. */
void ovl_kdf_label(uint8_t out[OVL_HASH_LEN], const uint8_t key[OVL_HASH_LEN], const char *label)
{
    uint8_t tmp[OVL_HASH_LEN];
    crypto_generichash(tmp, sizeof(tmp), (const uint8_t *)label, strlen(label), key, OVL_HASH_LEN);
    memcpy(out, tmp, OVL_HASH_LEN);
    sodium_memzero(tmp, sizeof(tmp));
}

/* Constant-time comparison of two secrets; true when equal. 16 bytes at
 * a time (crypto_verify_16, one vector compare) as far as they go:
 * sodium_memcmp takes a byte at a time, 145 ns for the 80 bytes of junk
 * a client checks per cell. */
bool ovl_equal(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    int d = 0;

    for (; n >= 16; n -= 16, x += 16, y += 16)
        d |= crypto_verify_16(x, y);
    return (d | sodium_memcmp(x, y, n)) == 0;
}

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void ovl_wipe(void *p, size_t n)
{
    if (p)
        sodium_memzero(p, n);
}

/* Fill buf with n cryptographically random bytes. */
void ovl_random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

/* Return a uniform random integer in [0, upper) (0 when upper < 2). */
uint32_t ovl_random_uniform(uint32_t upper)
{
    return upper < 2 ? 0 : randombytes_uniform(upper);
}

/* Natural log of u in (0, 1]: u = m * 2^e with m in [1, 2), then
 * ln m = 2 atanh((m - 1) / (m + 1)), whose series converges fast for
 * m < 2. Here so that the daemon does not link libm for one call. */
static double ln_unit(double u)
{
    double m = u, y, y2, term, sum = 0;
    int e = 0;

    while (m < 1.0) {
        m *= 2;
        e--;
    }
    y = (m - 1) / (m + 1);
    y2 = y * y;
    term = y;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= y2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

uint32_t ovl_random_exp_ms(uint32_t mean_ms)
{
    /* U uniform in (0, 1]: never ln(0). */
    double u = ((double)randombytes_uniform(UINT32_MAX) + 1.0) / 4294967296.0;
    double d = -ln_unit(u) * mean_ms;

    return d > 100.0 * mean_ms ? 100 * mean_ms : (uint32_t)d;
}

/* SipHash-2-4 under a fixed key: a good spread, and one copy of the code. */
uint32_t ovl_htab_hash(const void *key, size_t len)
{
    static const uint8_t k[crypto_shorthash_KEYBYTES];
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, key, len, k);
    return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
}
