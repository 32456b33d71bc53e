/* fuzz_uri.c - transport addresses (src/lib/uri.h: uri_parse, and what
 * the daemon does with a parsed URI: uri_format, uri_sockaddr,
 * uri_from_sockaddr).
 *
 * Input: the URI text (a NUL ends it early, as in a C string).
 *
 * Properties, from uri.h and uri.c: a rejected URI leaves out zeroed; an
 * accepted one has a lowercase scheme, formats back to its own text
 * whenever its scheme was written in lowercase (and always to text that
 * parses to the same URI), and a literal host has a socket address that
 * formats back to a URI with the same address and port.
 */
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "lib/uri.h"

static void seeds(const char *dir)
{
    static const char *const uris[] = {
        "tcp://127.0.0.1:7001",         "tcp://[::1]:7001",        "quic://relay.example:443",
        "QUIC://Relay-1.Example.ORG:0", "tcp://[fe80::1:2]:65535", "tcp://10.0.0.1:",
    };
    char name[16];

    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        snprintf(name, sizeof(name), "uri-%zu", i);
        fuzz_write_seed(dir, name, uris[i], strlen(uris[i]));
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

static bool same_uri(const struct ovl_uri *a, const struct ovl_uri *b)
{
    return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port && a->is_ipv6 == b->is_ipv6 && a->is_literal == b->is_literal;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
    return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

static void check_parsed(const struct ovl_uri *u, const char *text)
{
    char out[OVL_URI_MAX + 16], again[OVL_URI_MAX + 16];
    struct ovl_uri v, w;
    struct sockaddr_storage ss, ss2;
    bool lower = true;

    for (const char *p = u->scheme; *p; p++)
        FUZZ_ASSERT(!(*p >= 'A' && *p <= 'Z'));
    for (const char *p = text; *p && *p != ':'; p++)
        lower &= !(*p >= 'A' && *p <= 'Z');
    FUZZ_ASSERT(uri_format(out, sizeof(out), u) == 0);
    if (lower)
        FUZZ_ASSERT(strcmp(out, text) == 0);
    FUZZ_ASSERT(uri_parse(&v, out) == 0 && same_uri(u, &v));
    if (uri_sockaddr(u, &ss) != 0) {
        FUZZ_ASSERT(!u->is_literal);
        return;
    }
    FUZZ_ASSERT(u->is_literal);
    FUZZ_ASSERT(uri_from_sockaddr(again, sizeof(again), u->scheme, (struct sockaddr *)&ss) == 0);
    FUZZ_ASSERT(uri_parse(&w, again) == 0 && w.port == u->port && w.is_ipv6 == u->is_ipv6);
    FUZZ_ASSERT(uri_sockaddr(&w, &ss2) == 0 && same_addr(&ss, &ss2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ovl_uri zero;
    char *text = malloc(size + 1); /* exact size: ASan sees any read past the NUL */
    struct ovl_uri u;

    fuzz_begin();
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (uri_parse(&u, text) == 0)
        check_parsed(&u, text);
    else
        FUZZ_ASSERT(memcmp(&u, &zero, sizeof(u)) == 0);
    free(text);
    return 0;
}
