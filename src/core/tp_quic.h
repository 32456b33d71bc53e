/* tp_quic.h - the QUIC transport (ngtcp2 + GnuTLS), scheme "quic". */
#ifndef OVL_CORE_TP_QUIC_H
#define OVL_CORE_TP_QUIC_H

#include "core/transport.h"

extern const struct tp_ops tp_quic_ops;

#endif
