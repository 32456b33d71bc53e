/* tp_tcp.h - the TCP transport (uv_tcp_t, 16-bit length-prefixed frames). */
#ifndef OVL_CORE_TP_TCP_H
#define OVL_CORE_TP_TCP_H

#include "core/transport.h"

extern const struct tp_ops tp_tcp_ops;

/* Return the bytes of buffers a TCP transport holds besides its struct:
 * the partial frame of its last read, its send buffers and what a pause
 * held back. 0 for an idle connection (see tp_tcp.c). */
size_t tp_tcp_held(const struct transport *t);

#endif
