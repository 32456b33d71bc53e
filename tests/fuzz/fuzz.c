/* fuzz.c - the harnesses' shared helpers (see fuzz.h). */
#include "fuzz.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/bytes.h"

/* ---- deterministic randomness ------------------------------------------ */

/* A ChaCha20 stream under a fixed key; every request takes a fresh nonce,
 * so the sequence of outputs depends only on the sequence of requests. */
static uint8_t rng_key[32];
static uint64_t rng_calls;

static const char *rng_name(void)
{
    return "ovl-fuzz-deterministic";
}

static void rng_buf(void *const buf, const size_t size)
{
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};

    st_le32(nonce, (uint32_t)rng_calls);
    st_le32(nonce + 4, (uint32_t)(rng_calls >> 32));
    rng_calls++;
    memset(buf, 0, size);
    crypto_stream_chacha20_ietf_xor(buf, buf, size, nonce, rng_key);
}

static uint32_t rng_random(void)
{
    uint8_t b[4];

    rng_buf(b, sizeof(b));
    return ld_be32(b);
}

static void rng_stir(void) {}

static int rng_close(void)
{
    return 0;
}

static randombytes_implementation fuzz_rng = {
    .implementation_name = rng_name,
    .random = rng_random,
    .stir = rng_stir,
    .uniform = NULL, /* libsodium's own rejection sampling over rng_random */
    .buf = rng_buf,
    .close = rng_close,
};

/* Install the deterministic stream before libsodium initialises. */
void fuzz_init(void)
{
    fuzz_begin();
    if (randombytes_set_implementation(&fuzz_rng) != 0 || ovl_crypto_init() != 0) {
        fprintf(stderr, "fuzz: cannot initialise libsodium\n");
        abort();
    }
}

/* Rewind the stream: every input starts from the same state. */
void fuzz_begin(void)
{
    static const char label[] = "ovl fuzz randomness";

    crypto_generichash(rng_key, sizeof(rng_key), (const uint8_t *)label, sizeof(label) - 1, NULL,
                       0);
    rng_calls = 0;
}

/* ---- fixed keys --------------------------------------------------------- */

void fuzz_key(uint8_t out[32], const char *label, unsigned which)
{
    uint8_t w[4];

    st_le32(w, which);
    ovl_hash2(out, (const uint8_t *)label, strlen(label), w, sizeof(w));
}

void fuzz_identity(struct ovl_identity *id, unsigned which)
{
    uint8_t seed[OVL_ED25519_SEED];

    fuzz_key(seed, "ovl fuzz identity", which);
    if (ovl_identity_from_seed(id, seed) != 0)
        abort();
}

void fuzz_x25519(uint8_t pk[OVL_X25519_LEN], uint8_t sk[OVL_X25519_LEN], unsigned which)
{
    fuzz_key(sk, "ovl fuzz x25519", which);
    if (crypto_scalarmult_base(pk, sk) != 0)
        abort();
}

/* ---- reading the input -------------------------------------------------- */

void fz_bytes(struct fuzz_in *in, void *out, size_t n)
{
    size_t k = n < in->n ? n : in->n;

    memcpy(out, in->p, k);
    memset((uint8_t *)out + k, 0, n - k);
    in->p += k;
    in->n -= k;
}

uint8_t fz_u8(struct fuzz_in *in)
{
    uint8_t v;

    fz_bytes(in, &v, 1);
    return v;
}

uint16_t fz_u16(struct fuzz_in *in)
{
    uint8_t b[2];

    fz_bytes(in, b, sizeof(b));
    return ld_le16(b);
}

uint32_t fz_u32(struct fuzz_in *in)
{
    uint8_t b[4];

    fz_bytes(in, b, sizeof(b));
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t fz_u64(struct fuzz_in *in)
{
    uint64_t lo = fz_u32(in);

    return lo | (uint64_t)fz_u32(in) << 32;
}

size_t fz_take(struct fuzz_in *in, const uint8_t **p, size_t max)
{
    size_t k = max < in->n ? max : in->n;

    *p = in->p;
    in->p += k;
    in->n -= k;
    return k;
}

/* ---- seeds -------------------------------------------------------------- */

const char *fuzz_seed_dir(void)
{
    const char *d = getenv("OVL_FUZZ_WRITE_SEEDS");

    return d && *d ? d : NULL;
}

/* Seeds are the same bytes whatever the harness drew before: rewound. */
void fuzz_seeds(void (*write)(const char *dir))
{
    const char *dir = fuzz_seed_dir();

    if (!dir)
        return;
    fuzz_begin();
    write(dir);
    exit(0);
}

void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    FILE *f;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", dir, strerror(errno));
        abort();
    }
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        abort();
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
}

void seed_put(struct fuzz_seed *s, const void *p, size_t n)
{
    if (n > sizeof(s->buf) - s->len)
        abort();
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

void seed_u8(struct fuzz_seed *s, uint8_t v)
{
    seed_put(s, &v, 1);
}

void seed_u16(struct fuzz_seed *s, uint16_t v)
{
    uint8_t b[2];

    st_le16(b, v);
    seed_put(s, b, sizeof(b));
}

void seed_u32(struct fuzz_seed *s, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    seed_put(s, b, sizeof(b));
}

void seed_u64(struct fuzz_seed *s, uint64_t v)
{
    seed_u32(s, (uint32_t)v);
    seed_u32(s, (uint32_t)(v >> 32));
}
