/* tp_quic.c - placeholder while the QUIC transport is being written. */
#include "core/tp_quic.h"

static int quic_listen(struct tp_env *env, const struct ovl_uri *uri, const struct tp_listen_cb *cb,
                       void *udata, struct tp_listener **out)
{
    (void)env, (void)uri, (void)cb, (void)udata;
    *out = NULL;
    return OVL_EUNSUPP;
}

static int quic_dial(struct tp_env *env, const struct ovl_uri *uri, const struct tp_cb *cb,
                     void *udata, struct transport **out)
{
    (void)env, (void)uri, (void)cb, (void)udata;
    *out = NULL;
    return OVL_EUNSUPP;
}

const struct tp_ops tp_quic_ops = {
    .scheme = "quic",
    .listen = quic_listen,
    .dial = quic_dial,
};
