/* fuzz_kvmsg.c - the control protocol's message codec (src/lib/kvmsg.h).
 *
 * Every input is used twice:
 *   - as bytes from a control client: kv_message_len finds the first
 *     message and kvmsg_parse parses it (at most 32 pairs, the control
 *     server's cap for ordinary requests);
 *   - as NUL-separated key and value strings for the builder: pair i is
 *     appended with kv_adds, kv_addf("%s") or kv_addu (its value's length)
 *     in turn, then kv_end.
 *
 * Properties: a message length ends on a blank line; a parsed message
 * built again with kv_adds and kv_end gives back exactly its bytes, and
 * kvmsg_get finds each key's first pair; whatever the builder accepts
 * without an error parses back to the same pairs (kv_adds having replaced
 * control characters with '?').
 */
#include <inttypes.h>
#include <string.h>

#include "fuzz.h"
#include "lib/kvmsg.h"

#define MAX_PAIRS 32

static void seeds(const char *dir)
{
#define SEED(name, text)                                                                           \
    {                                                                                              \
        name, text, sizeof(text) - 1                                                               \
    }
    static const struct {
        const char *name, *text;
        size_t len;
    } texts[] = {
        SEED("status", "ovl-control=1\ncommand=status\n\n"),
        SEED("send-data", "ovl-control=1\ncommand=send\nto=aaaa\ndata=aGVsbG8=\ndata=d29ybGQ=\n\n"),
        SEED("pipelined", "ovl-control=1\ncommand=version\n\novl-control=1\ncommand=peers\n\n"),
        SEED("utf8-and-empty", "key=caf\xc3\xa9 = ok\nempty=\n\n"),
        SEED("empty-message", "\n"),
        SEED("builder-pairs", "errno\0000\0name\0value with\ttab\0n\00012345"),
    };
#undef SEED

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        fuzz_write_seed(dir, texts[i].name, texts[i].text, texts[i].len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_seeds(seeds);
    return 0;
}

static void parse(const uint8_t *data, size_t size)
{
    size_t m = kv_message_len((const char *)data, size);
    struct kvmsg msg;
    struct kvbuf b = {0};
    char *buf;

    if (m == 0)
        return;
    FUZZ_ASSERT(m <= size && data[m - 1] == '\n' && (m == 1 || data[m - 2] == '\n'));
    buf = malloc(m); /* exact size: ASan sees any read past the message */
    if (!buf)
        return;
    memcpy(buf, data, m);
    if (kvmsg_parse(&msg, buf, m, MAX_PAIRS) != 0) {
        FUZZ_ASSERT(msg.n == 0 && msg.pairs == NULL);
        free(buf);
        return;
    }
    FUZZ_ASSERT(msg.n <= MAX_PAIRS);
    for (size_t i = 0; i < msg.n; i++) {
        const char *first = kvmsg_get(&msg, msg.pairs[i].key);
        size_t j = 0;

        while (strcmp(msg.pairs[j].key, msg.pairs[i].key) != 0)
            j++;
        FUZZ_ASSERT(first == msg.pairs[j].value);
        kv_adds(&b, msg.pairs[i].key, msg.pairs[i].value);
    }
    kv_end(&b);
    FUZZ_ASSERT(b.err == 0 && b.len == m && memcmp(b.data, data, m) == 0);
    kvbuf_free(&b);
    kvmsg_free(&msg);
    free(buf);
}

/* The value kv_adds writes for v. */
static char *sanitized(const char *v)
{
    size_t n = strnlen(v, KV_LINE_MAX);
    char *s = malloc(n + 1);

    if (!s)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    s[n] = '\0';
    return s;
}

static void build(const uint8_t *data, size_t size)
{
    /* A NUL-terminated copy: the pieces are the strings in it. */
    char *text = malloc(size + 1), *keys[MAX_PAIRS], *want[MAX_PAIRS];
    struct kvbuf b = {0};
    struct kvmsg msg;
    size_t n = 0, pos = 0;

    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    while (pos < size && n < MAX_PAIRS) {
        char *k = text + pos, *v;
        char num[24];

        pos += strlen(k) + 1;
        v = pos <= size ? text + pos : text + size;
        pos += strlen(v) + 1;
        switch (n % 3) {
        case 0:
            kv_adds(&b, k, v);
            want[n] = sanitized(v);
            break;
        case 1:
            kv_addf(&b, k, "%s", v);
            want[n] = sanitized(v); /* only used if v was valid, hence unchanged */
            break;
        default:
            kv_addu(&b, k, strlen(v));
            snprintf(num, sizeof(num), "%zu", strlen(v));
            want[n] = sanitized(num);
            break;
        }
        keys[n++] = k;
    }
    kv_end(&b);
    if (b.err == 0) {
        FUZZ_ASSERT(kv_message_len(b.data, b.len) == b.len);
        FUZZ_ASSERT(kvmsg_parse(&msg, b.data, b.len, MAX_PAIRS) == 0 && msg.n == n);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(strcmp(msg.pairs[i].key, keys[i]) == 0 &&
                        strcmp(msg.pairs[i].value, want[i]) == 0);
        kvmsg_free(&msg);
    }
    for (size_t i = 0; i < n; i++)
        free(want[i]);
    kvbuf_free(&b);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin();
    parse(data, size);
    build(data, size);
    return 0;
}
