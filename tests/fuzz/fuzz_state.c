/* fuzz_state.c - the state files a node reads at start: a client's guards
 * (src/client/guard.h: guard_decode), a bootstrap's registry
 * (src/dir/registry.h: registry_restore) and a relay's accounting
 * (src/core/acct.h: acct_decode). All are files the node wrote itself,
 * but a disk, a crash or an operator can hand back anything.
 *
 * Input: mode(1), then the file's bytes.
 *   mode bit 1 set: an accounting file, decoded at a fixed time under
 *     options of mode's high bits.
 *   else mode bit 0 clear: a guards file, decoded at a fixed time.
 *   else: a registry file, restored into an empty registry.
 *
 * Properties: guards decode to at most GUARD_MAX distinct guards, none
 * past its lifetime, that encode (guard_encode) to a file decoding to the
 * same guards; a registry restore takes and skips no more entries than
 * the file can hold, and the nodes it holds then save (registry_save) to
 * a file that restores exactly those again; accounting decodes only to
 * the periods holding the time, keeps counts only when it read a file,
 * and encodes to text that decodes to the same periods and counts.
 */
#include <string.h>

#include "client/guard.h"
#include "core/acct.h"
#include "dir/registry.h"
#include "fuzz.h"

#define NOW      1700000000000ull
#define N_RELAYS 3

static struct ovl_identity relays[N_RELAYS];

static void check_guards(const uint8_t *buf, size_t len)
{
    static struct guard_set gs, again;
    static char out[GUARD_FILE_MAX];
    struct guard_opts o;
    size_t n;

    memset(&o, 0, sizeof(o));
    o.want = 3;
    o.down_ms = 1000;
    o.life_ms = 1000;
    o.suites = 1;
    guard_init(&gs, &o);
    if (guard_decode(&gs, buf, len, NOW) != 0)
        return;
    FUZZ_ASSERT(gs.n <= GUARD_MAX);
    for (unsigned i = 0; i < gs.n; i++) {
        FUZZ_ASSERT(gs.g[i].expires_ms > NOW);
        for (unsigned j = 0; j < i; j++)
            FUZZ_ASSERT(memcmp(gs.g[i].id, gs.g[j].id, OVL_ED25519_PK) != 0);
    }
    n = guard_encode(&gs, out, sizeof(out));
    FUZZ_ASSERT(n > 0);
    guard_init(&again, &o);
    FUZZ_ASSERT(guard_decode(&again, (const uint8_t *)out, n, NOW) == 0);
    FUZZ_ASSERT(again.n == gs.n);
    for (unsigned i = 0; i < gs.n; i++) {
        FUZZ_ASSERT(memcmp(again.g[i].id, gs.g[i].id, OVL_ED25519_PK) == 0);
        FUZZ_ASSERT(again.g[i].added_ms == gs.g[i].added_ms);
        FUZZ_ASSERT(again.g[i].expires_ms == gs.g[i].expires_ms);
        FUZZ_ASSERT(again.g[i].bad_since_ms == gs.g[i].bad_since_ms);
    }
}

static struct registry *reg_new(void)
{
    struct registry_opts o = {.max_nodes = 16,
                              .max_chains = 1,
                              .ttl_ms = 1000,
                              .chain_ttl_ms = 1,
                              .allow_private = true};
    struct registry *r = NULL;

    FUZZ_ASSERT(registry_new(&o, &r) == 0);
    return r;
}

static void check_registry(const uint8_t *buf, size_t len)
{
    struct registry *r = reg_new(), *again;
    unsigned loaded = 0, skipped = 0, loaded2 = 0, skipped2 = 0;
    struct registry_stats st;
    uint8_t *saved = NULL;
    size_t saved_len;

    (void)registry_restore(r, buf, len, 1, NOW, &loaded, &skipped);
    /* every entry costs at least its 2-byte length */
    FUZZ_ASSERT((uint64_t)loaded + skipped <= len / 2 + 1);
    FUZZ_ASSERT(loaded <= 16);
    FUZZ_ASSERT(registry_save(r, &saved, &saved_len) == 0);
    again = reg_new();
    FUZZ_ASSERT(registry_restore(again, saved, saved_len, 1, NOW, &loaded2, &skipped2) == 0);
    /* a node named twice in the file is held once */
    registry_stats(r, &st);
    FUZZ_ASSERT(loaded2 <= loaded && skipped2 == 0 && loaded2 == st.relays + st.endpoints);
    free(saved);
    registry_free(again);
    registry_free(r);
}

static void check_acct(uint8_t mode, const uint8_t *buf, size_t len)
{
    struct acct a = {.o = {.max = {1000, 0},
                           .start_min = (uint32_t)(mode >> 2) * 22u,
                           .start_mday = 1u + (mode >> 2) % 28u}},
                b;
    char out[ACCT_FILE_MAX];
    int rc = acct_decode(&a, buf, len, NOW), n;

    for (unsigned p = 0; p < ACCT_PERIODS; p++) {
        FUZZ_ASSERT(a.start_ms[p] == acct_start(&a.o, (enum acct_period)p, NOW));
        FUZZ_ASSERT(a.start_ms[p] <= NOW &&
                    acct_end(&a.o, (enum acct_period)p, a.start_ms[p]) > NOW);
        FUZZ_ASSERT(rc == 0 || (a.used[p][0] == 0 && a.used[p][1] == 0));
    }
    n = acct_encode(&a, out, sizeof(out));
    FUZZ_ASSERT(n > 0);
    b.o = a.o;
    FUZZ_ASSERT(acct_decode(&b, (const uint8_t *)out, (size_t)n, NOW) == 0);
    FUZZ_ASSERT(memcmp(a.start_ms, b.start_ms, sizeof(a.start_ms)) == 0);
    FUZZ_ASSERT(memcmp(a.used, b.used, sizeof(a.used)) == 0);
}

/* A signed relay descriptor of relays[i], valid at NOW. */
static size_t make_desc(uint8_t *out, unsigned i)
{
    struct desc d;
    size_t len;

    memset(&d, 0, sizeof(d));
    d.flags = DESC_RELAY;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = 1;
    d.published_ms = NOW - 1000;
    d.expires_ms = NOW + 3600000;
    memcpy(d.id_pk, relays[i].pk, OVL_ED25519_PK);
    memset(d.onion_pk, 0x40 + (int)i, sizeof(d.onion_pk));
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://10.0.0.%u:7001", i + 1);
    if (desc_sign(&d, &relays[i], out, DESC_MAX_LEN, &len) != 0)
        abort();
    return len;
}

static void seeds(const char *dir)
{
    static struct fuzz_seed s;
    static const char guards[] =
        "\0ovl-guards 1\n"
        "0101010101010101010101010101010101010101010101010101010101010101 1699999999000 "
        "1702592000000 0\n"
        "0202020202020202020202020202020202020202020202020202020202020202 1699999999000 "
        "1705184000000 1699999999500\n";
    struct registry *r = reg_new();
    uint8_t d[DESC_MAX_LEN], *saved;
    size_t saved_len;

    static const char acct[] = "\2ovl-accounting 1\nday 1699920000000 5 7\n"
                               "month 1698796800000 5 7\n";

    fuzz_write_seed(dir, "guards-2", guards, sizeof(guards) - 1);
    fuzz_write_seed(dir, "accounting-1", acct, sizeof(acct) - 1);
    for (unsigned i = 0; i < N_RELAYS; i++) {
        size_t len = make_desc(d, i);

        FUZZ_ASSERT(registry_register(r, relays[i].pk, d, len, 1, NOW) == 0);
    }
    FUZZ_ASSERT(registry_save(r, &saved, &saved_len) == 0);
    s.len = 0;
    seed_put(&s, "\1", 1);
    seed_put(&s, saved, saved_len);
    fuzz_write_seed(dir, "registry-3", s.buf, s.len);
    free(saved);
    registry_free(r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    for (unsigned i = 0; i < N_RELAYS; i++)
        fuzz_identity(&relays[i], 200 + i);
    fuzz_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode;
    const uint8_t *file;
    size_t len;

    fuzz_begin();
    mode = fz_u8(&in);
    len = fz_take(&in, &file, size);
    if (mode & 2)
        check_acct(mode, file, len);
    else if (mode & 1)
        check_registry(file, len);
    else
        check_guards(file, len);
    return 0;
}
