/* fuzz.h - what every libFuzzer harness in tests/fuzz shares.
 *
 * Contract of a harness (fuzz_TARGET.c): LLVMFuzzerInitialize calls
 * fuzz_init() once, makes its fixed keys (fuzz_identity, fuzz_x25519,
 * fuzz_key), then calls fuzz_seeds() with its function that writes its seed
 * corpus (fuzz_write_seed), which runs it and exits when the environment
 * names a seed directory. LLVMFuzzerTestOneInput calls fuzz_begin() first, reads its input
 * through a struct fuzz_in, frees everything it allocated before it
 * returns (LeakSanitizer checks every input) and reports a broken
 * property with FUZZ_ASSERT, which aborts so that libFuzzer keeps the
 * input as a crash. Nothing a harness calls per input allocates.
 *
 * Randomness is deterministic: fuzz_init installs a libsodium randombytes
 * implementation (a ChaCha20 stream under a fixed key) and fuzz_begin
 * rewinds it, so the same input takes the same path every time it runs,
 * ephemeral keys included, and a crash reproduces from its input alone.
 * Never link this into anything but a harness.
 */
#ifndef OVL_TESTS_FUZZ_H
#define OVL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/crypto.h"

/* The two entry points libFuzzer calls (declared here for -Wmissing-prototypes). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (a crash for libFuzzer) when cond is false: a property the code
 * under test promises does not hold for this input. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Install the deterministic randomness and initialise libsodium; aborts on
 * failure. Call once, first. */
void fuzz_init(void);

/* Rewind the deterministic randomness: call at the start of every input. */
void fuzz_begin(void);

/* The fixed Ed25519 identity number which (the same in every run). */
void fuzz_identity(struct ovl_identity *id, unsigned which);

/* The fixed X25519 key pair number which. */
void fuzz_x25519(uint8_t pk[OVL_X25519_LEN], uint8_t sk[OVL_X25519_LEN], unsigned which);

/* A fixed 32-byte secret named by label and which. */
void fuzz_key(uint8_t out[32], const char *label, unsigned which);

/* A reader over the fuzz input. Past the end every read yields zeros, so a
 * harness never has to check lengths to stay in bounds. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* Return the next byte (0 past the end). */
uint8_t fz_u8(struct fuzz_in *in);

/* Return the next 2, 4 or 8 bytes as a little-endian number. */
uint16_t fz_u16(struct fuzz_in *in);
uint32_t fz_u32(struct fuzz_in *in);
uint64_t fz_u64(struct fuzz_in *in);

/* Copy the next n bytes into out, zero-filled past the end of the input. */
void fz_bytes(struct fuzz_in *in, void *out, size_t n);

/* Point *p at the next min(max, remaining) bytes of the input, consume
 * them and return how many. */
size_t fz_take(struct fuzz_in *in, const uint8_t **p, size_t max);

/* Return the directory a harness should write its seed corpus into
 * (environment OVL_FUZZ_WRITE_SEEDS), or NULL for a normal run. */
const char *fuzz_seed_dir(void);

/* With a seed directory (fuzz_seed_dir), rewind the randomness, call
 * write(dir) and exit 0 (the run only writes seeds); else return at once.
 * Call from LLVMFuzzerInitialize once the fixed keys are made. */
void fuzz_seeds(void (*write)(const char *dir));

/* Write one seed file dir/name; aborts on failure. */
void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len);

/* Appends bytes to a seed being built (at most FUZZ_SEED_MAX); aborts when
 * it would overflow, which only a harness bug can cause. */
#define FUZZ_SEED_MAX (64 * 1024)
struct fuzz_seed {
    uint8_t buf[FUZZ_SEED_MAX];
    size_t len;
};
void seed_put(struct fuzz_seed *s, const void *p, size_t n);
void seed_u8(struct fuzz_seed *s, uint8_t v);
void seed_u16(struct fuzz_seed *s, uint16_t v);
void seed_u32(struct fuzz_seed *s, uint32_t v);
void seed_u64(struct fuzz_seed *s, uint64_t v);

#endif
