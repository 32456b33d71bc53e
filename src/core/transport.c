/* transport.c - the registry of compiled-in transports and the URI front door. */
#include <string.h>

#include "ovl_config.h"

#include "core/tp_tcp.h"
#include "core/transport.h"

#if OVL_HAVE_QUIC
#include "core/tp_quic.h"
#endif

static const struct tp_ops *const tp_registry[] = {
    &tp_tcp_ops,
#if OVL_HAVE_QUIC
    &tp_quic_ops,
#endif
};

/* Look up the transport whose scheme matches exactly (uri_parse lowercases). */
const struct tp_ops *tp_lookup(const char *scheme)
{
    if (!scheme)
        return NULL;
    for (size_t i = 0; i < sizeof(tp_registry) / sizeof(tp_registry[0]); i++) {
        if (strcmp(tp_registry[i]->scheme, scheme) == 0)
            return tp_registry[i];
    }
    return NULL;
}

/* Name the compiled-in transports, in registry order. */
const char *tp_names(void)
{
#if OVL_HAVE_QUIC
    return "tcp,quic";
#else
    return "tcp";
#endif
}

/* A transport's bit is its place in the registry. */
unsigned tp_bit(const char *scheme)
{
    const struct tp_ops *ops = tp_lookup(scheme);

    for (size_t i = 0; ops && i < sizeof(tp_registry) / sizeof(tp_registry[0]); i++)
        if (tp_registry[i] == ops)
            return 1u << i;
    return 0;
}

/* Every compiled-in transport's bit. */
unsigned tp_all_bits(void)
{
    return (1u << (sizeof(tp_registry) / sizeof(tp_registry[0]))) - 1;
}

/* Parse text and find its transport; shared by dial and listen. */
static int tp_resolve(const char *text, struct ovl_uri *uri, const struct tp_ops **ops)
{
    int err = uri_parse(uri, text);
    if (err)
        return err;
    *ops = tp_lookup(uri->scheme);
    return *ops ? 0 : OVL_EUNSUPP;
}

/* Dial uri with the transport its scheme names. */
int tp_dial(struct tp_env *env, const char *uri, const struct tp_cb *cb, void *udata,
            struct transport **out)
{
    struct ovl_uri u;
    const struct tp_ops *ops = NULL;
    int err;

    if (!out)
        return OVL_EINVAL;
    *out = NULL;
    if (!env || !env->loop || !uri || !cb)
        return OVL_EINVAL;
    err = tp_resolve(uri, &u, &ops);
    if (err)
        return err;
    /* Port 0 only makes sense for a listener asking for any free port. */
    if (u.port == 0)
        return OVL_EINVAL;
    err = ops->dial(env, &u, cb, udata, out);
    if (err)
        *out = NULL;
    return err;
}

/* Listen on uri with the transport its scheme names. */
int tp_listen(struct tp_env *env, const char *uri, const struct tp_listen_cb *cb, void *udata,
              struct tp_listener **out)
{
    struct ovl_uri u;
    const struct tp_ops *ops = NULL;
    int err;

    if (!out)
        return OVL_EINVAL;
    *out = NULL;
    if (!env || !env->loop || !uri || !cb || !cb->accept)
        return OVL_EINVAL;
    err = tp_resolve(uri, &u, &ops);
    if (err)
        return err;
    err = ops->listen(env, &u, cb, udata, out);
    if (err)
        *out = NULL;
    return err;
}
