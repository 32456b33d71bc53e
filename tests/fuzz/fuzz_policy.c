/* fuzz_policy.c - exit policies (src/dir/policy.h): the text form
 * ([exit] policy, exit_policy_parse) and the binary form descriptors carry
 * (exit_policy_decode), with matching on the side.
 *
 * Input: mode(1) | port(2, LE) | addr(16) | rest
 *   mode bit 0 clear (text): rest is a policy's text (a NUL ends it early);
 *   mode bit 0 set (binary): rest is an encoded policy;
 *   mode bit 1 picks the address length matched: 4 (addr's first bytes) or 16.
 *
 * Properties: a rejected input leaves the policy empty (and, for text,
 * names a rule no further than the 33rd and a reason); an accepted one
 * encodes (binary: to exactly its bytes), decodes back to itself, formats
 * to text that parses back to itself; whatever it accepts on a port it
 * may_accept_port there; an IPv4-mapped IPv6 address matches as its IPv4
 * address does.
 */
#include <string.h>

#include "dir/policy.h"
#include "fuzz.h"

#define TEXT_MAX (EXIT_POLICY_MAX_RULES * 80)

static const char *const seed_texts[] = {
    "accept *:443, reject *:*",
    "reject 0.0.0.0/8:*, reject 10.0.0.0/8:*, reject 127.0.0.0/8:*, reject 169.254.0.0/16:*,\n"
    "reject 172.16.0.0/12:*, reject 192.168.0.0/16:*, reject [fc00::]/7:*, reject [::1]:*,\n"
    "accept *:80, accept *:443, accept *:6660-6669, reject *:*",
    "accept *4:22, accept *6:1000-2000, reject [2001:db8::]/32:*, accept [::ffff:1.2.3.4]/120:53",
    "accept 192.0.2.7/32:22, accept 10.1.2.3/9:*,, reject *:1-65535",
    "accept [2001:db8::1]/129:80", /* refused: bad prefix length */
};

/* Write a seed: the mode, a port and an address, then the body. */
static void write_seed(const char *dir, const char *name, uint8_t mode, const void *body,
                       size_t len)
{
    static struct fuzz_seed s;
    static const uint8_t addr[16] = {10, 1, 2, 3};

    s.len = 0;
    seed_u8(&s, mode);
    seed_u16(&s, 443);
    seed_put(&s, addr, sizeof(addr));
    seed_put(&s, body, len);
    fuzz_write_seed(dir, name, s.buf, s.len);
}

static void seeds(const char *dir)
{
    uint8_t enc[EXIT_POLICY_ENC_MAX];
    struct exit_policy p;
    char name[32];
    size_t len;

    for (size_t i = 0; i < sizeof(seed_texts) / sizeof(seed_texts[0]); i++) {
        memset(&p, 0, sizeof(p));
        snprintf(name, sizeof(name), "text-%zu", i);
        write_seed(dir, name, 0, seed_texts[i], strlen(seed_texts[i]));
        if (exit_policy_parse(&p, seed_texts[i], NULL, NULL) != 0)
            continue;
        if (exit_policy_encode(&p, enc, sizeof(enc), &len) != 0)
            abort();
        snprintf(name, sizeof(name), "binary-%zu", i);
        write_seed(dir, name, 1 | (i & 1) << 1, enc, len);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_seeds(seeds);
    return 0;
}

/* What must hold for a policy p that was accepted; raw is its encoding
 * when it came as one (else NULL). */
static void check_policy(const struct exit_policy *p, const uint8_t *raw, size_t raw_len,
                         const uint8_t addr[16], bool v4, uint16_t port)
{
    static char text[TEXT_MAX];
    uint8_t enc[EXIT_POLICY_ENC_MAX], mapped[16] = {[10] = 0xff, [11] = 0xff};
    struct exit_policy back;
    size_t len;

    FUZZ_ASSERT(p->n <= EXIT_POLICY_MAX_RULES);
    FUZZ_ASSERT(exit_policy_encode(p, enc, sizeof(enc), &len) == 0);
    if (raw)
        FUZZ_ASSERT(len == raw_len && memcmp(enc, raw, len) == 0);
    FUZZ_ASSERT(exit_policy_decode(&back, enc, len) == 0 && memcmp(&back, p, sizeof(back)) == 0);
    FUZZ_ASSERT(exit_policy_format(p, text, sizeof(text)) == 0);
    memset(&back, 0, sizeof(back));
    FUZZ_ASSERT(exit_policy_parse(&back, text, NULL, NULL) == 0 &&
                memcmp(&back, p, sizeof(back)) == 0);
    if (exit_policy_match(p, addr, v4 ? 4 : 16, port))
        FUZZ_ASSERT(exit_policy_may_accept_port(p, port));
    memcpy(mapped + 12, addr, 4);
    FUZZ_ASSERT(exit_policy_match(p, mapped, 16, port) == exit_policy_match(p, addr, 4, port));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct exit_policy p;
    uint8_t mode, addr[16];
    const uint8_t *body;
    uint16_t port;
    size_t n;

    fuzz_begin();
    mode = fz_u8(&in);
    port = fz_u16(&in);
    fz_bytes(&in, addr, sizeof(addr));
    n = fz_take(&in, &body, SIZE_MAX);
    if (mode & 1) {
        uint8_t *raw = malloc(n ? n : 1); /* exact size: ASan sees any read past it */

        if (!raw)
            return 0;
        memcpy(raw, body, n);
        if (exit_policy_decode(&p, raw, n) == 0)
            check_policy(&p, raw, n, addr, mode & 2, port);
        else
            FUZZ_ASSERT(p.n == 0);
        free(raw);
        return 0;
    }
    char *text = malloc(n + 1);
    const char *why = NULL;
    unsigned bad = 0;

    if (!text)
        return 0;
    memcpy(text, body, n);
    text[n] = '\0';
    memset(&p, 0, sizeof(p));
    if (exit_policy_parse(&p, text, &bad, &why) == 0) {
        FUZZ_ASSERT(why == NULL);
        check_policy(&p, NULL, 0, addr, mode & 2, port);
    } else {
        FUZZ_ASSERT(p.n == 0 && why != NULL && bad <= EXIT_POLICY_MAX_RULES);
    }
    free(text);
    return 0;
}
