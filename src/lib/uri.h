/* uri.h - transport addresses written as URIs.
 *
 *   tcp://127.0.0.1:7001    tcp://[::1]:7001    quic://relay.example:443
 *
 * The scheme picks the transport from the registry in core/transport.h, so a
 * new transport needs no change in callers. The host is an IPv4 literal, a
 * bracketed IPv6 literal, or a DNS name (dial only; resolved asynchronously by
 * the transport). Port 0 means "any free port" and is valid for listening only.
 */
#ifndef OVL_LIB_URI_H
#define OVL_LIB_URI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/err.h"

#define OVL_URI_MAX    300 /* longest URI text accepted, including NUL */
#define OVL_URI_SCHEME 16  /* scheme buffer, including NUL */
#define OVL_URI_HOST   256 /* host buffer (DNS name limit 253), including NUL */

struct ovl_uri {
    char scheme[OVL_URI_SCHEME]; /* lowercase, e.g. "tcp" */
    char host[OVL_URI_HOST];     /* without brackets, e.g. "::1" */
    uint16_t port;
    bool is_ipv6;    /* host was a bracketed IPv6 literal */
    bool is_literal; /* host is an IP literal (no DNS needed) */
};

/* Parse s into out. Rejects: missing "://", empty or non-alphanumeric scheme,
 * empty host, unbracketed IPv6, bad port (non-digits, > 65535, missing),
 * anything after the port (path, query, user info), and strings of
 * OVL_URI_MAX or more bytes. OVL_EINVAL on any of these; out is zeroed. */
int uri_parse(struct ovl_uri *out, const char *s) OVL_WUR;

/* Write the canonical text of u ("tcp://[::1]:7001") into out. */
int uri_format(char *out, size_t outlen, const struct ovl_uri *u) OVL_WUR;

/* Fill ss with the socket address of a literal host; OVL_EINVAL for a DNS name. */
int uri_sockaddr(const struct ovl_uri *u, struct sockaddr_storage *ss) OVL_WUR;

/* Return the address block of sa, for sharing limits among the parties
 * that hold addresses cheaply: an IPv4 /24 (an IPv4-mapped IPv6 address
 * counts as its IPv4 address) or an IPv6 /48, tagged with the family;
 * never 0. 0 for any other family. */
uint64_t uri_addr_block(const struct sockaddr *sa);

/* Format a socket address as scheme://host:port into out. */
int uri_from_sockaddr(char *out, size_t outlen, const char *scheme,
                      const struct sockaddr *sa) OVL_WUR;

#endif
