/* tp_tcp.h - the TCP transport (uv_tcp_t, 16-bit length-prefixed frames). */
#ifndef OVL_CORE_TP_TCP_H
#define OVL_CORE_TP_TCP_H

#include "core/transport.h"

extern const struct tp_ops tp_tcp_ops;

#endif
