/* err.c - one description for every ovl code, negated errno and libuv code. */
#include "lib/err.h"

#include <errno.h>
#include <string.h>

#include <uv.h>

static const char *ovl_only_text(int err)
{
    switch (err) {
    case OVL_OK:
        return "success";
    case OVL_ENOMEM:
        return "out of memory or limit reached";
    case OVL_EINVAL:
        return "invalid argument";
    case OVL_EPROTO:
        return "protocol violation";
    case OVL_ECRYPTO:
        return "authentication failed";
    case OVL_EAGAIN:
        return "queue full, try again later";
    case OVL_ECLOSED:
        return "connection closed by peer";
    case OVL_ETIMEDOUT:
        return "timed out";
    case OVL_EPERM:
        return "permission denied or unsafe permissions";
    case OVL_ENOENT:
        return "no such object";
    case OVL_EEXIST:
        return "already exists";
    case OVL_EUNSUPP:
        return "not supported";
    case OVL_ETOOBIG:
        return "too large";
    case OVL_EREPLAY:
        return "replayed message";
    default:
        return NULL;
    }
}

/* libuv codes that are not errno values on Unix (resolver errors and a few
 * of its own); uv_strerror would allocate for codes it does not know. */
static const char *uv_only_text(int err)
{
    switch (err) {
    case UV_EOF:
        return "end of file";
    case UV_UNKNOWN:
        return "unknown system error";
    case UV_ECHARSET:
        return "invalid Unicode character";
    case UV_EAI_ADDRFAMILY:
        return "address family not supported";
    case UV_EAI_AGAIN:
        return "temporary name resolution failure";
    case UV_EAI_BADFLAGS:
        return "bad name resolution flags";
    case UV_EAI_CANCELED:
        return "name resolution cancelled";
    case UV_EAI_FAIL:
        return "permanent name resolution failure";
    case UV_EAI_FAMILY:
        return "address family not supported";
    case UV_EAI_MEMORY:
        return "out of memory in name resolution";
    case UV_EAI_NODATA:
        return "no address for host name";
    case UV_EAI_NONAME:
        return "unknown host name";
    case UV_EAI_OVERFLOW:
        return "name resolution buffer overflow";
    case UV_EAI_SERVICE:
        return "unknown service";
    case UV_EAI_SOCKTYPE:
        return "socket type not supported";
    case UV_EAI_BADHINTS:
        return "bad name resolution hints";
    case UV_EAI_PROTOCOL:
        return "resolved protocol unknown";
    default:
        return NULL;
    }
}

/* Return a static, human-readable description of err (ovl code or -errno). */
const char *ovl_strerror(int err)
{
    const char *s = ovl_only_text(err);
    if (!s)
        s = uv_only_text(err);
    if (s)
        return s;
    if (err < 0 && err > -4096) {
        /* The XSI strerror_r tells unknown numbers apart; strerror alone
         * would format "Unknown error N" into a shared buffer. */
        char probe[128];
        if (strerror_r(-err, probe, sizeof(probe)) == 0)
            return strerror(-err);
    }
    return "unknown error";
}
