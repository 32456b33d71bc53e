/* socks5.h - the SOCKS5 server side as pure code: the wire parser and the
 * reply encoder (RFC 1928, RFC 1929). No sockets, no allocation, no name
 * resolution; the caller owns the connection and does the I/O.
 *
 * Accepted subset, in wire order:
 *   greeting   VER=5 | NMETHODS (1..255) | METHODS
 *              method 0x02 (username/password) is chosen whenever offered
 *              (credentials isolate streams), else 0x00 (no auth)
 *   auth       (only after 0x02) VER=1 | ULEN | UNAME | PLEN | PASSWD;
 *              lengths 0..255, any bytes, any credentials succeed: they
 *              separate streams, they do not grant access
 *   request    VER=5 | CMD=1 (CONNECT) | RSV=0 | ATYP | DST.ADDR | DST.PORT
 *              ATYP 1: 4 bytes, 4: 16 bytes, 3: a length byte (1..255)
 *              and that many bytes, none of them NUL
 *
 * What a failure sends (out) before the caller closes, and the result:
 *   greeting VER != 5 (SOCKS4, "GET / HTTP/1.1", ...)  nothing        OVL_EUNSUPP
 *   NMETHODS = 0                                       05 FF          OVL_EPROTO
 *   neither 0x00 nor 0x02 offered                      05 FF          OVL_EUNSUPP
 *   auth VER != 1                                      01 01          OVL_EPROTO
 *   request VER != 5                                   reply 0x01     OVL_EPROTO
 *   CMD != 1 (BIND, UDP ASSOCIATE, unknown)            reply 0x07     OVL_EUNSUPP
 *   RSV != 0                                           reply 0x01     OVL_EPROTO
 *   ATYP not 1, 3 or 4                                 reply 0x08     OVL_EUNSUPP
 *   name of length 0, or a NUL in the name             reply 0x01     OVL_EPROTO
 * A "reply" is the 10-byte form socks5_reply() writes (BND 0.0.0.0:0). A
 * zero-length name or a NUL in one is malformed, not an unsupported kind
 * of address, so it gets general failure (0x01) rather than 0x08. Each
 * check happens at the byte that decides it: a request fails as soon as
 * it is known to be bad, without waiting for the rest of it.
 *
 * Buffers: struct socks5 is the caller's; out and req live inside it and
 * stay valid until the next socks5_feed() or socks5_init(). Input is
 * borrowed for the call only.
 */
#ifndef OVL_CLIENT_SOCKS5_H
#define OVL_CLIENT_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Reply codes (RFC 1928 REP). */
#define SOCKS5_REP_OK           0x00 /* succeeded */
#define SOCKS5_REP_FAIL         0x01 /* general SOCKS server failure */
#define SOCKS5_REP_NOT_ALLOWED  0x02 /* connection not allowed by ruleset */
#define SOCKS5_REP_NET_UNREACH  0x03 /* network unreachable */
#define SOCKS5_REP_HOST_UNREACH 0x04 /* host unreachable */
#define SOCKS5_REP_REFUSED      0x05 /* connection refused */
#define SOCKS5_REP_TTL_EXPIRED  0x06 /* TTL expired */
#define SOCKS5_REP_CMD_UNSUPP   0x07 /* command not supported */
#define SOCKS5_REP_ATYP_UNSUPP  0x08 /* address type not supported */

/* Address types (ATYP) and methods. */
#define SOCKS5_ATYP_IPV4       0x01
#define SOCKS5_ATYP_NAME       0x03
#define SOCKS5_ATYP_IPV6       0x04
#define SOCKS5_METHOD_NONE     0x00
#define SOCKS5_METHOD_USERPASS 0x02

#define SOCKS5_REPLY_LEN 10 /* the IPv4-form reply; also the most out ever holds */

/* A complete CONNECT request. Strings are NUL-terminated copies inside. */
struct socks5_req {
    uint8_t atyp;     /* SOCKS5_ATYP_IPV4, _IPV6 or _NAME */
    uint8_t method;   /* SOCKS5_METHOD_NONE or _USERPASS */
    uint16_t port;    /* host order */
    uint8_t addr[16]; /* IPV4: the first 4 bytes, IPV6: all 16 (network order) */
    char host[256];   /* NAME: the name (1..255 bytes, no NUL) and a NUL */
    /* USERPASS: the credentials as sent (0..255 bytes each, which may hold
     * NULs: compare with the lengths), each followed by a NUL. */
    uint8_t user_len, pass_len;
    uint8_t user[256], pass[256];
};

/* Parser state: fixed size, no pointers, embeddable and copyable.
 * Zero-filled (socks5_init) is the start state. */
struct socks5 {
    struct socks5_req req;         /* filled as bytes arrive; complete on SOCKS5_READY */
    uint8_t out[SOCKS5_REPLY_LEN]; /* bytes to send on SOCKS5_SEND and on failure */
    uint8_t out_len;
    uint8_t rep;   /* on failure: the reply code (SOCKS5_REP_FAIL before the request) */
    uint8_t state; /* private from here on */
    uint8_t left;  /* bytes still to come in the current field */
    uint8_t pos;   /* bytes of it so far */
    uint8_t offered;
    int16_t res; /* the result once finished, else 0 */
};

/* What socks5_feed() asks the caller to do (failures are negative). */
enum socks5_res {
    SOCKS5_MORE = 0,  /* all input taken: wait for more bytes */
    SOCKS5_SEND = 1,  /* send out[0..out_len), then feed what was not used */
    SOCKS5_READY = 2, /* req holds a CONNECT request: answer with socks5_reply() */
};

/* Start s afresh (the same as zero-filling it). */
void socks5_init(struct socks5 *s);

/* Take len bytes from the application (in, borrowed; any split of the
 * stream) and set *used to how many of them were consumed. Return:
 *   SOCKS5_MORE   every byte was used; the exchange is not done
 *   SOCKS5_SEND   out holds a method selection or auth status reply
 *   SOCKS5_READY  req is complete; bytes after *used are application data
 *   OVL_EUNSUPP, OVL_EPROTO  failure: send out[0..out_len) (possibly
 *                 nothing) and close; rep says why (table above)
 * Each call stops at the first thing to act on, so bytes after it are
 * left for the next call. After SOCKS5_READY or a failure every call
 * returns the same result, uses nothing and leaves out as it was. */
int socks5_feed(struct socks5 *s, const uint8_t *in, size_t len, size_t *used) OVL_WUR;

/* Write the 10-byte reply VER=5 | code | RSV=0 | ATYP=1 | BND.ADDR | BND.PORT
 * into out: bnd is 4 bytes of IPv4 address (NULL: 0.0.0.0), bnd_port in
 * host order. Return SOCKS5_REPLY_LEN, OVL_ETOOBIG if cap is short, or
 * OVL_EINVAL for out NULL or a code above SOCKS5_REP_ATYP_UNSUPP. */
int socks5_reply(uint8_t *out, size_t cap, uint8_t code, const uint8_t *bnd,
                 uint16_t bnd_port) OVL_WUR;

/* Tell whether host (a NUL-terminated name, not NULL) is "<node id>.ovl":
 * the suffix ".ovl" in any case, optionally with a final dot (".ovl."),
 * the part before it exactly a node ID (lib/encode.h, any case).
 * Return 1 and the decoded ID in id_out; 0 for a name not ending in
 * ".ovl"; OVL_EINVAL for one ending in ".ovl" that is no node ID
 * (subdomains included): never send such a name elsewhere, answer
 * SOCKS5_REP_HOST_UNREACH. id_out is zeroed unless the result is 1. */
int socks5_is_ovl_name(const char *host, uint8_t id_out[32]) OVL_WUR;

#endif
