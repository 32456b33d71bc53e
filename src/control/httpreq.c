/* httpreq.c - the head of an HTTP/1.x request, pure code (httpreq.h). */
#include "control/httpreq.h"

#include <stdbool.h>
#include <string.h>

/* A token character of RFC 9110 5.6.2. */
static bool http_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A character of a field's value: visible ASCII, obs-text, blank or tab. */
static bool http_vchar(uint8_t c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* Return the length of the head (through its empty line), 0 if it has
 * not ended in buf[0..len); resume where the last call stopped. */
static size_t http_head_end(struct httpreq *r, const uint8_t *buf, size_t len)
{
    for (size_t i = r->scan; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if ((i >= 1 && buf[i - 1] == '\n') || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))
            return i + 1;
    }
    r->scan = len;
    return 0;
}

/* Take the line at *at in buf[0..end): its start in *off and its length
 * without the LF or CRLF that ends it in *n; *at moves past it. */
static void http_line(const uint8_t *buf, size_t end, size_t *at, size_t *off, size_t *n)
{
    size_t i = *at;

    while (i < end && buf[i] != '\n')
        i++;
    *off = *at;
    *n = i - *at;
    if (*n && buf[i - 1] == '\r')
        (*n)--;
    *at = i + 1;
}

/* METHOD SP TARGET SP HTTP/1.x in p[0..n). */
static int http_request_line(struct httpreq *r, const uint8_t *p, size_t n)
{
    size_t m = 0, t;

    while (m < n && m < HTTPREQ_METHOD_MAX && http_tchar(p[m]))
        m++;
    if (m == 0 || m >= n || p[m] != ' ')
        return OVL_EPROTO;
    for (t = m + 1; t < n && p[t] > 0x20 && p[t] < 0x7f; t++)
        ;
    if (t == m + 1 || t - m - 1 > HTTPREQ_TARGET_MAX || t >= n || p[t] != ' ')
        return OVL_EPROTO;
    p += t + 1;
    n -= t + 1;
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
        p[7] < '0' || p[7] > '9')
        return OVL_EPROTO;
    if (p[5] != '1' || p[7] > '1')
        return OVL_EUNSUPP;
    r->method_len = (uint16_t)m;
    r->target_off = (uint16_t)(m + 1);
    r->target_len = (uint16_t)(t - m - 1);
    r->minor = (uint8_t)(p[7] - '0');
    return 0;
}

/* NAME ":" VALUE in p[0..n); count a Host field in *hosts. */
static int http_field(const uint8_t *p, size_t n, unsigned *hosts)
{
    size_t k = 0;

    while (k < n && http_tchar(p[k]))
        k++;
    if (k == 0 || k >= n || p[k] != ':')
        return OVL_EPROTO;
    for (size_t i = k + 1; i < n; i++)
        if (!http_vchar(p[i]))
            return OVL_EPROTO;
    if (k == 4 && (p[0] | 0x20) == 'h' && (p[1] | 0x20) == 'o' && (p[2] | 0x20) == 's' &&
        (p[3] | 0x20) == 't')
        (*hosts)++;
    return 0;
}

int httpreq_parse(struct httpreq *r, const uint8_t *buf, size_t len, size_t max)
{
    size_t end = http_head_end(r, buf, len < max ? len : max), at = 0, off, n;
    unsigned hosts = 0;
    int rc;

    if (end == 0)
        return len >= max ? OVL_ETOOBIG : 0;
    http_line(buf, end, &at, &off, &n);
    if ((rc = http_request_line(r, buf + off, n)) != 0)
        return rc;
    for (;;) {
        http_line(buf, end, &at, &off, &n);
        if (n == 0)
            break;
        if ((rc = http_field(buf + off, n, &hosts)) != 0)
            return rc;
    }
    if (hosts > 1 || (r->minor == 1 && hosts == 0))
        return OVL_EPROTO;
    return (int)end;
}

int httpreq_route(const struct httpreq *r, const uint8_t *buf)
{
    const uint8_t *t = buf + r->target_off;
    size_t n = r->target_len;

    if (n < 8 || memcmp(t, "/metrics", 8) != 0 || (n > 8 && t[8] != '?'))
        return 404;
    return r->method_len == 3 && memcmp(buf, "GET", 3) == 0 ? 200 : 405;
}
