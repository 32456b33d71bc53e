/* uri.c - parse and format scheme://host:port transport addresses.
 *
 * The scheme is case-insensitive and stored lowercase; the host is kept as
 * written (DNS names are case-insensitive anyway, and resolvers cope). Every
 * accepted URI with a lowercase scheme formats back to exactly its own text:
 * ports have no leading zeros and names no trailing dot.
 */
#include "lib/bytes.h"
#include "lib/uri.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define DNS_NAME_MAX  253
#define DNS_LABEL_MAX 63

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), lowercased into out. */
static int parse_scheme(struct ovl_uri *out, const char *s, size_t len)
{
    if (len == 0 || len >= OVL_URI_SCHEME || !is_alpha(s[0]))
        return OVL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return OVL_EINVAL;
        out->scheme[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out->scheme[len] = '\0';
    return 0;
}

/* Letters, digits and '-' in dot-separated labels of 1..63 characters that
 * neither start nor end with '-'; at most 253 characters in all. */
static bool valid_dns_name(const char *s, size_t len)
{
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > DNS_LABEL_MAX || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (is_alpha(c) || is_digit(c) || c == '-') {
            if (label == 0 && c == '-')
                return false;
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static bool all_digits_and_dots(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]) && s[i] != '.')
            return false;
    }
    return true;
}

/* Decimal 0..65535, no sign, no leading zeros, nothing after it. */
static int parse_port(const char *s, uint16_t *port)
{
    uint32_t v = 0;
    size_t i = 0;
    if (!is_digit(s[0]) || (s[0] == '0' && s[1] != '\0'))
        return OVL_EINVAL;
    for (; s[i]; i++) {
        if (!is_digit(s[i]) || i >= 5)
            return OVL_EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return OVL_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* Parse "[v6]:port" or "host:port" (after "://") into out. */
static int parse_authority(struct ovl_uri *out, const char *a)
{
    const char *host, *colon;
    size_t hlen;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close[1] != ':')
            return OVL_EINVAL;
        host = a + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        out->is_ipv6 = true;
    } else {
        colon = strchr(a, ':');
        if (!colon)
            return OVL_EINVAL;
        host = a;
        hlen = (size_t)(colon - a);
    }
    if (hlen == 0 || hlen >= OVL_URI_HOST)
        return OVL_EINVAL;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';

    uint8_t addr[sizeof(struct in6_addr)];
    if (out->is_ipv6) {
        /* inet_pton refuses zone ids ("%eth0") and anything non-hex. */
        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return OVL_EINVAL;
        out->is_literal = true;
    } else if (all_digits_and_dots(host, hlen)) {
        /* Looks numeric: must be a real dotted quad, never a "name". */
        if (inet_pton(AF_INET, out->host, addr) != 1)
            return OVL_EINVAL;
        out->is_literal = true;
    } else if (!valid_dns_name(host, hlen)) {
        return OVL_EINVAL;
    }
    return parse_port(colon + 1, &out->port);
}

/* Parse s into out; OVL_EINVAL (and a zeroed out) on anything malformed. */
int uri_parse(struct ovl_uri *out, const char *s)
{
    if (!out)
        return OVL_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!s || strnlen(s, OVL_URI_MAX) >= OVL_URI_MAX)
        return OVL_EINVAL;
    const char *sep = strstr(s, "://");
    if (!sep)
        return OVL_EINVAL;
    int rc = parse_scheme(out, s, (size_t)(sep - s));
    if (rc == 0)
        rc = parse_authority(out, sep + 3);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Write the canonical text of u ("tcp://[::1]:7001") into out. */
int uri_format(char *out, size_t outlen, const struct ovl_uri *u)
{
    if (!out || !u || outlen == 0)
        return OVL_EINVAL;
    const char *fmt = u->is_ipv6 ? "%s://[%s]:%u" : "%s://%s:%u";
    int n = snprintf(out, outlen, fmt, u->scheme, u->host, (unsigned)u->port);
    if (n < 0) {
        out[0] = '\0';
        return OVL_EINVAL;
    }
    if ((size_t)n >= outlen) {
        out[0] = '\0';
        return OVL_ETOOBIG;
    }
    return 0;
}

/* Fill ss with the socket address of a literal host; OVL_EINVAL for a DNS name. */
int uri_sockaddr(const struct ovl_uri *u, struct sockaddr_storage *ss)
{
    if (!u || !ss)
        return OVL_EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (u->is_ipv6 || u->is_literal) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        /* Both families keep the family and the port at the same places. */
        s4->sin_family = u->is_ipv6 ? AF_INET6 : AF_INET;
        s4->sin_port = htons(u->port);
        if (inet_pton(s4->sin_family, u->host,
                      u->is_ipv6 ? (void *)&s6->sin6_addr : (void *)&s4->sin_addr) == 1)
            return 0;
    }
    memset(ss, 0, sizeof(*ss));
    return OVL_EINVAL;
}

/* Format a socket address as scheme://host:port into out. */
int uri_from_sockaddr(char *out, size_t outlen, const char *scheme, const struct sockaddr *sa)
{
    struct ovl_uri u;
    if (!out || !scheme || !sa)
        return OVL_EINVAL;
    memset(&u, 0, sizeof(u));
    if (parse_scheme(&u, scheme, strlen(scheme)) != 0)
        return OVL_EINVAL;
    u.is_ipv6 = sa->sa_family == AF_INET6;
    if (!u.is_ipv6 && sa->sa_family != AF_INET)
        return OVL_EUNSUPP;
    /* Both families keep the port at the same place. */
    if (!inet_ntop(sa->sa_family,
                   u.is_ipv6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                             : (const void *)&((const struct sockaddr_in *)sa)->sin_addr,
                   u.host, sizeof(u.host)))
        return OVL_EINVAL;
    u.port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    u.is_literal = true;
    return uri_format(out, outlen, &u);
}

uint64_t uri_addr_block(const struct sockaddr *sa)
{
    const struct sockaddr_in6 *v6 = (const void *)sa;
    const uint8_t *a;

    if (sa->sa_family == AF_INET)
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
        a = v6->sin6_addr.s6_addr + 12;
    else if (sa->sa_family == AF_INET6)
        return (uint64_t)6 << 56 | (uint64_t)ld_be32(v6->sin6_addr.s6_addr) << 16 |
               ld_be16(v6->sin6_addr.s6_addr + 4); /* /48 */
    else
        return 0;
    return (uint64_t)4 << 56 | (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | a[2]; /* /24 */
}
