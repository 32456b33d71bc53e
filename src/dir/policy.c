/* policy.c - exit policies: the text form, matching, and the binary form
 * descriptors carry (policy.h).
 *
 * One check (rule_ok) bounds every rule the encoder writes, and the
 * decoder accepts only bytes the encoder writes back exactly, so nothing
 * this node publishes could be refused by another and every policy has
 * one encoding. Addresses are parsed by inet_pton, as src/lib/uri.c does.
 */
#include "dir/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"

#define RULE_TEXT_MAX 96 /* longer than any valid rule */

/* Clear the bits of a past the first bits. */
static void mask(uint8_t a[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
        if (keep < 8)
            a[i] &= (uint8_t)(0xff00 >> keep);
    }
}

/* The limits of policy.h on one rule (bits: 0 for any, at most 32 for
 * IPv4, 128 for IPv6). */
static bool rule_ok(const struct exit_rule *r)
{
    uint8_t a[16];

    memcpy(a, r->addr, 16);
    mask(a, r->bits);
    return r->accept <= 1 && r->family <= EXIT_V6 && r->bits <= 32 * r->family * r->family &&
           r->lo >= 1 && r->lo <= r->hi && memcmp(a, r->addr, 16) == 0;
}

/* Read 1..5 digits at s into *v (at most max); *end follows them. (Loops
 * here and in parse_rule rather than strspn, strtoull and strrchr: each
 * library function imported costs about 70 bytes of ovld.) */
static bool num(const char *s, char **end, unsigned long max, unsigned long *v)
{
    size_t n;

    *v = 0;
    for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
        *v = *v * 10 + (unsigned long)(s[n] - '0'); /* past 5 digits, refused anyway */
    *end = (char *)s + n;
    return n >= 1 && n <= 5 && *v <= max;
}

/* PORT: '*', a port or LO-HI. */
static bool parse_ports(struct exit_rule *r, const char *s)
{
    unsigned long lo = 1, hi = 65535;
    char *end = (char *)s + 1;

    if (strcmp(s, "*") != 0) {
        if (!num(s, &end, 65535, &lo))
            return false;
        hi = lo;
        if (*end == '-' && !num(end + 1, &end, 65535, &hi))
            return false;
    }
    r->lo = (uint16_t)lo;
    r->hi = (uint16_t)hi;
    return *end == '\0' && lo >= 1 && lo <= hi;
}

/* Parse the address part (NUL-terminated, may be changed) into r. */
static const char *parse_addr(struct exit_rule *r, char *a)
{
    char *slash = strchr(a, '/'), *end;
    size_t n;
    unsigned long bits;

    if (slash)
        *slash++ = '\0';
    n = strlen(a);
    if (strcmp(a, "*") == 0)
        return slash ? "bad prefix length" : NULL;
    if (a[0] == '*' && (a[1] == '4' || a[1] == '6') && !a[2]) {
        r->family = a[1] == '4' ? EXIT_V4 : EXIT_V6;
        return slash ? "bad prefix length" : NULL;
    }
    if (n > 2 && a[0] == '[' && a[n - 1] == ']') {
        a[n - 1] = '\0';
        if (inet_pton(AF_INET6, a + 1, r->addr) != 1)
            return "bad address";
        r->family = EXIT_V6;
    } else if (inet_pton(AF_INET, a, r->addr) == 1) {
        r->family = EXIT_V4;
    } else {
        return "bad address";
    }
    bits = r->family == EXIT_V4 ? 32 : 128;
    if (slash && (!num(slash, &end, bits, &bits) || *end))
        return "bad prefix length";
    r->bits = (uint8_t)bits;
    mask(r->addr, r->bits);
    return NULL;
}

/* Parse one rule of n bytes at s (blanks trimmed) into r; NULL, or why not. */
static const char *parse_rule(struct exit_rule *r, const char *s, size_t n)
{
    char t[RULE_TEXT_MAX], *a, *port;

    memset(r, 0, sizeof(*r));
    if (n >= sizeof(t))
        return "rule too long";
    memcpy(t, s, n);
    t[n] = '\0';
    r->accept = strncmp(t, "accept", 6) == 0;
    if ((!r->accept && strncmp(t, "reject", 6) != 0) || (t[6] != ' ' && t[6] != '\t'))
        return "expected accept or reject";
    for (a = t + 6; *a == ' ' || *a == '\t'; a++)
        ;
    for (port = a + strlen(a); port > a && *port != ':'; port--) /* the last ':' */
        ;
    if (*port != ':' || !parse_ports(r, port + 1))
        return "bad port";
    *port = '\0';
    return parse_addr(r, a);
}

/* Parse the text form and add its rules to p's. */
int exit_policy_parse(struct exit_policy *p, const char *text, unsigned *bad, const char **why)
{
    const char *w = NULL, *s = text, *e;
    unsigned start;

    if (!p || !text || p->n > EXIT_POLICY_MAX_RULES)
        return OVL_EINVAL;
    start = p->n;
    for (size_t n; !w; s += n + 1) {
        n = strcspn(s, ",\n");
        for (e = s + n; e > s && strchr(" \t\r", e[-1]);)
            e--;
        while (s < e && strchr(" \t\r", *s))
            s++, n--;
        if (e > s)
            w = p->n == EXIT_POLICY_MAX_RULES ? "more than 32 rules"
                                              : parse_rule(&p->rules[p->n], s, (size_t)(e - s));
        if (!w && e > s)
            p->n++;
        if (!s[n])
            break;
    }
    if (bad)
        *bad = p->n - start;
    if (why)
        *why = w;
    if (!w)
        return 0;
    p->n = (uint8_t)start;
    return OVL_EINVAL;
}

/* True when p accepts addr (4 or 16 bytes) on port. */
bool exit_policy_match(const struct exit_policy *p, const uint8_t *addr, size_t len, uint16_t port)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    uint8_t a[16] = {0}, m[16];
    unsigned fam = len == 4 ? EXIT_V4 : EXIT_V6;

    if (!p || !addr || (len != 4 && len != 16))
        return false;
    if (len == 16 && memcmp(addr, mapped, 12) == 0) /* judged as IPv4 (policy.h) */
        addr += 12, len = 4, fam = EXIT_V4;
    memcpy(a, addr, len);
    for (unsigned i = 0; i < p->n && i < EXIT_POLICY_MAX_RULES; i++) {
        const struct exit_rule *r = &p->rules[i];

        if (port < r->lo || port > r->hi || (r->family && r->family != fam))
            continue;
        memcpy(m, a, 16);
        mask(m, r->bits);
        if (memcmp(m, r->addr, 16) == 0)
            return r->accept;
    }
    return false;
}

/* True when some address might be accepted on port. */
bool exit_policy_may_accept_port(const struct exit_policy *p, uint16_t port)
{
    unsigned gone = 0; /* families rejected whole on port: bit EXIT_V4, bit EXIT_V6 */

    for (unsigned i = 0; p && i < p->n && i < EXIT_POLICY_MAX_RULES; i++) {
        const struct exit_rule *r = &p->rules[i];
        unsigned fams = r->family ? 1u << r->family : 6;

        if (port < r->lo || port > r->hi || !(fams & ~gone))
            continue;
        if (r->accept)
            return true;
        if (r->bits == 0)
            gone |= fams;
    }
    return false;
}

/* Encode p into out (cap bytes). */
int exit_policy_encode(const struct exit_policy *p, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t buf[EXIT_POLICY_ENC_MAX];
    size_t pos = 0;

    if (len)
        *len = 0;
    if (!p || !out || !len || p->n > EXIT_POLICY_MAX_RULES)
        return OVL_EINVAL;
    for (unsigned i = 0; i < p->n; i++) {
        const struct exit_rule *r = &p->rules[i];
        unsigned form = r->lo == 1 && r->hi == 65535 ? 0 : r->lo == r->hi ? 1 : 2;

        if (!rule_ok(r))
            return OVL_EINVAL;
        buf[pos++] = (uint8_t)(r->accept << 7 | form << 2 | r->family);
        if (r->family) {
            buf[pos++] = r->bits;
            memcpy(buf + pos, r->addr, (r->bits + 7u) / 8);
            pos += (r->bits + 7u) / 8;
        }
        if (form)
            st_le16(buf + pos, r->lo);
        if (form == 2)
            st_le16(buf + pos + 2, r->hi);
        pos += 2 * form;
    }
    if (pos > cap)
        return OVL_ETOOBIG;
    memcpy(out, buf, pos);
    *len = pos;
    return 0;
}

/* Decode exactly len bytes into p: read the rules, then require that
 * they encode to the same bytes (which checks every limit at once). */
int exit_policy_decode(struct exit_policy *p, const uint8_t *in, size_t len)
{
    uint8_t again[EXIT_POLICY_ENC_MAX];
    size_t pos = 0, n;

    if (!p)
        return OVL_EINVAL;
    memset(p, 0, sizeof(*p));
    while (in && pos < len && p->n < EXIT_POLICY_MAX_RULES) {
        struct exit_rule *r = &p->rules[p->n++];
        unsigned h = in[pos++], form = h >> 2 & 3;

        r->accept = (uint8_t)(h >> 7);
        r->family = h & 3;
        if (r->family) {
            if (pos == len || in[pos] > 128 || (n = (in[pos] + 7u) / 8) >= len - pos)
                goto fail;
            r->bits = in[pos++];
            memcpy(r->addr, in + pos, n);
            pos += n;
        }
        if (2 * form > len - pos)
            goto fail;
        r->lo = form ? ld_le16(in + pos) : 1;
        r->hi = form > 1 ? ld_le16(in + pos + 2) : form ? r->lo : 65535;
        pos += 2 * form;
    }
    if (pos == len && exit_policy_encode(p, again, sizeof(again), &n) == 0 && n == len &&
        (!len || memcmp(again, in, len) == 0))
        return 0;
fail:
    memset(p, 0, sizeof(*p));
    return OVL_EPROTO;
}

/* Write the text of rule r into t (RULE_TEXT_MAX bytes); return its length. */
static size_t rule_text(const struct exit_rule *r, char *t)
{
    char a[INET6_ADDRSTRLEN + 2] = "*";
    size_t n;

    if (r->family && !r->bits)
        a[1] = r->family == EXIT_V4 ? '4' : '6';
    else if (r->family == EXIT_V6 && inet_ntop(AF_INET6, r->addr, a + 1, INET6_ADDRSTRLEN))
        a[0] = '[', memcpy(a + strlen(a), "]", 2);
    else if (r->family)
        inet_ntop(AF_INET, r->addr, a, INET_ADDRSTRLEN);
    n = (size_t)snprintf(t, RULE_TEXT_MAX, "%s %s", r->accept ? "accept" : "reject", a);
    if (r->bits && r->bits != (r->family == EXIT_V4 ? 32 : 128))
        n += (size_t)snprintf(t + n, RULE_TEXT_MAX - n, "/%u", r->bits);
    if (r->lo == 1 && r->hi == 65535)
        return n + (size_t)snprintf(t + n, RULE_TEXT_MAX - n, ":*");
    if (r->lo == r->hi)
        return n + (size_t)snprintf(t + n, RULE_TEXT_MAX - n, ":%u", r->lo);
    return n + (size_t)snprintf(t + n, RULE_TEXT_MAX - n, ":%u-%u", r->lo, r->hi);
}

/* Write the text form of p into out (cap bytes). */
int exit_policy_format(const struct exit_policy *p, char *out, size_t cap)
{
    char t[RULE_TEXT_MAX + 2] = ", ";
    size_t len = 0, cut = 0, n;

    if (!p || !out || cap < 5 || p->n > EXIT_POLICY_MAX_RULES)
        return OVL_EINVAL;
    out[0] = '\0';
    for (unsigned i = 0; i < p->n; i++) {
        const char *s = i ? t : t + 2; /* ", " before all rules but the first */

        n = rule_text(&p->rules[i], t + 2) + (size_t)(t + 2 - s);
        if (len + n >= cap) {
            memcpy(out + cut, " ...", 5);
            return OVL_ETOOBIG;
        }
        memcpy(out + len, s, n + 1);
        len += n;
        if (len + 5 <= cap)
            cut = len;
    }
    return 0;
}
