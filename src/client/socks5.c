/* socks5.c - the SOCKS5 server-side parser and reply encoder (socks5.h).
 *
 * One byte at a time: every field goes straight into req, so nothing is
 * buffered and any split of the input gives the same result.
 */
#include <string.h>

#include "client/socks5.h"
#include "lib/bytes.h"
#include "lib/encode.h"

enum {
    ST_VER = 0, /* greeting */
    ST_NMETHODS,
    ST_METHODS,
    ST_AUTH_VER,
    ST_ULEN,
    ST_USER,
    ST_PLEN,
    ST_PASS,
    ST_REQ_VER,
    ST_CMD,
    ST_RSV,
    ST_ATYP,
    ST_NLEN,
    ST_ADDR, /* the IPv4 or IPv6 address */
    ST_NAME,
    ST_PORT,
    ST_DONE,
};

void socks5_init(struct socks5 *s)
{
    memset(s, 0, sizeof(*s));
}

int socks5_reply(uint8_t *out, size_t cap, uint8_t code, const uint8_t *bnd, uint16_t bnd_port)
{
    if (!out || code > SOCKS5_REP_ATYP_UNSUPP)
        return OVL_EINVAL;
    if (cap < SOCKS5_REPLY_LEN)
        return OVL_ETOOBIG;
    out[0] = 5;
    out[1] = code;
    out[2] = 0;
    out[3] = SOCKS5_ATYP_IPV4;
    if (bnd)
        memcpy(out + 4, bnd, 4);
    else
        memset(out + 4, 0, 4);
    st_be16(out + 8, bnd_port);
    return SOCKS5_REPLY_LEN;
}

/* Finish with result res (SOCKS5_READY or an error) and return it. */
static int finish(struct socks5 *s, int res)
{
    s->state = ST_DONE;
    s->res = (int16_t)res;
    return res;
}

/* Set out to the two bytes a, b and return res. */
static int put2(struct socks5 *s, uint8_t a, uint8_t b, int res)
{
    s->out[0] = a;
    s->out[1] = b;
    s->out_len = 2;
    return res;
}

/* Fail before the request: out holds that phase's refusal (n bytes). */
static int fail_early(struct socks5 *s, int err, uint8_t a, uint8_t b, uint8_t n)
{
    put2(s, a, b, 0);
    s->out_len = n;
    s->rep = SOCKS5_REP_FAIL;
    return finish(s, err);
}

/* Fail in the request: out holds the reply with code rep. */
static int fail_req(struct socks5 *s, int err, uint8_t rep)
{
    s->out_len = (uint8_t)socks5_reply(s->out, sizeof(s->out), rep, NULL, 0);
    s->rep = rep;
    return finish(s, err);
}

/* Expect a field of n bytes in state st, or skip to next when n is 0. */
static int field(struct socks5 *s, uint8_t n, uint8_t st, uint8_t next)
{
    s->left = n;
    s->pos = 0;
    s->state = n ? st : next;
    return SOCKS5_MORE;
}

/* The greeting and the RFC 1929 subnegotiation, one byte c. */
static int step_hello(struct socks5 *s, uint8_t c)
{
    struct socks5_req *r = &s->req;

    switch (s->state) {
    case ST_VER:
        if (c != 5)
            return fail_early(s, OVL_EUNSUPP, 0, 0, 0);
        s->state = ST_NMETHODS;
        return SOCKS5_MORE;
    case ST_NMETHODS:
        if (c == 0)
            return fail_early(s, OVL_EPROTO, 5, 0xff, 2);
        return field(s, c, ST_METHODS, 0);
    case ST_METHODS:
        if (c == SOCKS5_METHOD_NONE || c == SOCKS5_METHOD_USERPASS)
            s->offered |= (uint8_t)(1u << c);
        if (--s->left)
            return SOCKS5_MORE;
        r->method = (s->offered & 4) ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NONE;
        if (!s->offered)
            return fail_early(s, OVL_EUNSUPP, 5, 0xff, 2);
        s->state = r->method ? ST_AUTH_VER : ST_REQ_VER;
        return put2(s, 5, r->method, SOCKS5_SEND);
    case ST_AUTH_VER:
        if (c != 1)
            return fail_early(s, OVL_EPROTO, 1, 1, 2);
        s->state = ST_ULEN;
        return SOCKS5_MORE;
    case ST_ULEN:
        r->user_len = c;
        return field(s, c, ST_USER, ST_PLEN);
    case ST_USER:
        r->user[s->pos++] = c;
        return --s->left ? SOCKS5_MORE : field(s, 0, 0, ST_PLEN);
    case ST_PLEN:
        r->pass_len = c;
        if (c)
            return field(s, c, ST_PASS, 0);
        break;
    default: /* ST_PASS */
        r->pass[s->pos++] = c;
        if (--s->left)
            return SOCKS5_MORE;
        break;
    }
    s->state = ST_REQ_VER; /* any credentials succeed */
    return put2(s, 1, 0, SOCKS5_SEND);
}

/* The CONNECT request, one byte c. */
static int step_req(struct socks5 *s, uint8_t c)
{
    struct socks5_req *r = &s->req;

    switch (s->state) {
    case ST_REQ_VER:
        if (c != 5)
            return fail_req(s, OVL_EPROTO, SOCKS5_REP_FAIL);
        s->state = ST_CMD;
        return SOCKS5_MORE;
    case ST_CMD:
        if (c != 1)
            return fail_req(s, OVL_EUNSUPP, SOCKS5_REP_CMD_UNSUPP);
        s->state = ST_RSV;
        return SOCKS5_MORE;
    case ST_RSV:
        if (c != 0)
            return fail_req(s, OVL_EPROTO, SOCKS5_REP_FAIL);
        s->state = ST_ATYP;
        return SOCKS5_MORE;
    case ST_ATYP:
        r->atyp = c;
        if (c == SOCKS5_ATYP_IPV4 || c == SOCKS5_ATYP_IPV6)
            return field(s, c == SOCKS5_ATYP_IPV4 ? 4 : 16, ST_ADDR, 0);
        if (c != SOCKS5_ATYP_NAME)
            return fail_req(s, OVL_EUNSUPP, SOCKS5_REP_ATYP_UNSUPP);
        s->state = ST_NLEN;
        return SOCKS5_MORE;
    case ST_NLEN:
        if (c == 0)
            return fail_req(s, OVL_EPROTO, SOCKS5_REP_FAIL);
        return field(s, c, ST_NAME, 0);
    case ST_ADDR:
        r->addr[s->pos++] = c;
        return --s->left ? SOCKS5_MORE : field(s, 2, ST_PORT, 0);
    case ST_NAME:
        if (c == 0)
            return fail_req(s, OVL_EPROTO, SOCKS5_REP_FAIL);
        r->host[s->pos++] = (char)c;
        return --s->left ? SOCKS5_MORE : field(s, 2, ST_PORT, 0);
    default: /* ST_PORT */
        r->port = (uint16_t)(r->port << 8 | c);
        return --s->left ? SOCKS5_MORE : finish(s, SOCKS5_READY);
    }
}

int socks5_feed(struct socks5 *s, const uint8_t *in, size_t len, size_t *used)
{
    size_t i = 0;
    int res = SOCKS5_MORE;

    if (s->state == ST_DONE) {
        *used = 0;
        return s->res;
    }
    s->out_len = 0;
    while (res == SOCKS5_MORE && i < len) {
        uint8_t c = in[i++];
        res = s->state < ST_REQ_VER ? step_hello(s, c) : step_req(s, c);
    }
    *used = i;
    return res;
}

int socks5_is_ovl_name(const char *host, uint8_t id_out[32])
{
    size_t n = strlen(host);
    char id[OVL_NODE_ID_LEN + 1];

    memset(id_out, 0, 32);
    n -= n > 0 && host[n - 1] == '.'; /* a final dot names the same host */
    if (n < 4 || host[n - 4] != '.' || (host[n - 3] | 0x20) != 'o' || (host[n - 2] | 0x20) != 'v' ||
        (host[n - 1] | 0x20) != 'l')
        return 0;
    if (n - 4 != OVL_NODE_ID_LEN)
        return OVL_EINVAL;
    memcpy(id, host, OVL_NODE_ID_LEN);
    id[OVL_NODE_ID_LEN] = '\0';
    return node_id_parse(id_out, id) == 0 ? 1 : OVL_EINVAL;
}
