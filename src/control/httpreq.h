/* httpreq.h - the head of an HTTP/1.x request as pure code: finding its
 * end, parsing it, and the metrics listener's one route (RFC 9112). No
 * sockets, no allocation; the caller owns the buffer and does the I/O
 * (control/mhttp.c).
 *
 * Accepted, in wire order:
 *   request line  METHOD SP TARGET SP HTTP/1.x, then CRLF or a bare LF:
 *                 METHOD a token (RFC 9110 tchar) of 1..HTTPREQ_METHOD_MAX,
 *                 TARGET 1..HTTPREQ_TARGET_MAX visible ASCII characters,
 *                 x one digit; single spaces only
 *   fields        NAME ":" VALUE, each line ended likewise: NAME a token
 *                 (no blank before the colon), VALUE visible characters,
 *                 bytes from 0x80, blanks and tabs
 *   the end       an empty line
 * An HTTP/1.1 request carries exactly one Host field (RFC 9112 3.2); an
 * HTTP/1.0 one at most one. Anything else is refused:
 *   no empty line within max bytes                     OVL_ETOOBIG (431)
 *   HTTP/ and digits, but not 1.0 or 1.1               OVL_EUNSUPP (505)
 *   any other fault (a bare CR, a control character,
 *   a folded field, a missing or second Host, ...)     OVL_EPROTO  (400)
 * A body is never read: the listener answers and closes.
 *
 * httpreq_parse is called again each time more bytes arrive, with the
 * same struct and the whole buffer so far; it searches only the bytes it
 * has not seen (r->scan), so a request dribbled in byte by byte costs no
 * more than one sent at once.
 */
#ifndef OVL_CONTROL_HTTPREQ_H
#define OVL_CONTROL_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define HTTPREQ_METHOD_MAX 16
#define HTTPREQ_TARGET_MAX 1024
#define HTTPREQ_HEAD_MAX   8192 /* the metrics listener's cap of a head (mhttp.h) */

/* The state of one request's parse; zero it before the first call. */
struct httpreq {
    size_t scan;         /* bytes searched for the head's end so far */
    uint16_t method_len; /* method = buf[0 .. method_len) */
    uint16_t target_off; /* target = buf[target_off .. +target_len) */
    uint16_t target_len;
    uint8_t minor; /* HTTP/1.minor */
};

/* Look for the end of the head in buf[0..len) (len at most max, which is
 * at most 65535) and parse the head once it is there. Return its length
 * (through the empty line; what follows is not looked at) with r's fields
 * filled, 0 when it has not ended and len < max, or OVL_ETOOBIG,
 * OVL_EUNSUPP or OVL_EPROTO as above. */
int httpreq_parse(struct httpreq *r, const uint8_t *buf, size_t len, size_t max) OVL_WUR;

/* Return the status that answers the parsed request r of buf: 200 for GET
 * of /metrics (a query string allowed), 404 for any other target, 405 for
 * any other method of /metrics. */
int httpreq_route(const struct httpreq *r, const uint8_t *buf);

#endif
