/* transport.c - the registry of compiled-in transports, the URI front
 * door, and the steps of the contract every transport shares (transport.h). */
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ovl_config.h"

#include "core/cell.h"
#include "core/tp_meter.h"
#include "core/tp_tcp.h"
#include "core/transport.h"
#include "lib/bytes.h"

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

_Static_assert(sizeof(tp_registry) / sizeof(tp_registry[0]) <= TP_MAX, "TP_MAX names them all");

/* A transport's place in the registry; a type outside it (none in ovld) counts as tcp. */
unsigned tp_index(const struct transport *t)
{
    for (unsigned i = 1; i < sizeof(tp_registry) / sizeof(tp_registry[0]); i++)
        if (tp_registry[i] == t->ops)
            return i;
    return 0;
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

/* ---- the contract's common steps --------------------------------------- */

/* The ladder in the order tp_send() documents its errors. */
int tp_admit(struct transport *t, const uint8_t *frame, size_t len, size_t queued, size_t max)
{
    if (t->flags & TP_F_CLOSING)
        return OVL_ECLOSED;
    if (len > OVL_FRAME_MAX)
        return OVL_ETOOBIG;
    if (len == 0 || !frame)
        return OVL_EINVAL;
    if (queued + OVL_FRAME_LENHDR + len > max) {
        t->stats.eagain++;
        t->flags |= TP_F_WANT_DRAIN;
        return OVL_EAGAIN;
    }
    return 0;
}

/* The meter counts what the transport queued, framing included. */
void tp_count_sent(struct transport *t, size_t len)
{
    t->stats.frames_out++;
    t->stats.bytes_out += len;
    if (t->env->meter)
        tp_meter_sent(t->env->meter, len + OVL_FRAME_LENHDR);
}

/* The owner may close or pause t from frame(), and the meter hold it:
 * check before every next frame. */
int tp_deframe(struct transport *t, const uint8_t *buf, size_t len, unsigned stop, size_t *used)
{
    size_t off = 0;
    int err = 0;

    stop |= TP_F_CLOSING | TP_F_HOLD;
    while (!(t->flags & stop) && len - off >= OVL_FRAME_LENHDR) {
        size_t flen = ld_be16(buf + off);

        if (flen == 0 || flen > OVL_FRAME_MAX) {
            err = flen ? OVL_ETOOBIG : OVL_EPROTO;
            break;
        }
        if (len - off - OVL_FRAME_LENHDR < flen)
            break;
        t->stats.frames_in++;
        t->stats.bytes_in += flen;
        off += OVL_FRAME_LENHDR + flen;
        if (t->cb && t->cb->frame)
            t->cb->frame(t, buf + off - flen, flen);
        if (t->env->meter && !(t->flags & TP_F_CLOSING))
            tp_meter_frame(t->env->meter, t, OVL_FRAME_LENHDR + flen);
    }
    *used = off;
    return err;
}

/* Closing happens once: the reason of the first call is the one reported. */
bool tp_begin_close(struct transport *t, int reason)
{
    if (t->flags & TP_F_CLOSING)
        return false;
    t->flags |= TP_F_CLOSING;
    t->reason = reason;
    if (t->env->meter)
        tp_meter_forget(t->env->meter, t); /* waits for nothing any more */
    return true;
}

/* Tell the owner the transport is up. */
void tp_emit_connected(struct transport *t)
{
    if (t->cb && t->cb->connected)
        t->cb->connected(t);
}

/* The owner installs its callbacks from accept() (transport.h). */
bool tp_emit_accept(struct tp_listener *l, struct transport *t)
{
    l->cb->accept(l, t);
    if (t->flags & TP_F_CLOSING)
        return false;
    if (!t->cb) {
        t->flags |= TP_F_SILENT; /* nobody took it: close without calling anyone */
        return false;
    }
    return true;
}

int tp_resolve_name(struct transport *t, uv_getaddrinfo_t *req, const struct ovl_uri *uri,
                    int socktype, uv_getaddrinfo_cb cb)
{
    struct addrinfo hints;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)uri->port);
    rc = uv_getaddrinfo(t->env->loop, req, cb, uri->host, port, &hints);
    if (!rc)
        t->flags |= TP_F_RESOLVING;
    return rc;
}

int tp_name_resolved(struct transport *t, int status, struct addrinfo *res,
                      struct sockaddr_storage *ss)
{
    int rc = 0;

    t->flags &= ~TP_F_RESOLVING;
    if (tp_is_closing(t))
        rc = TP_RESOLVED_CLOSING;
    else if (status < 0)
        rc = status;
    else if (!res || res->ai_addrlen > sizeof(*ss))
        rc = OVL_ENOENT;
    if (!rc) {
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
    }
    uv_freeaddrinfo(res);
    return rc;
}

/* The last callback; the transport frees t right after. */
void tp_emit_closed(struct transport *t)
{
    if (!(t->flags & TP_F_SILENT) && t->cb && t->cb->closed)
        t->cb->closed(t, t->reason);
}
