/* err.c - one description for every ovl code, negated errno and libuv code. */
#include "lib/err.h"

#include <errno.h>
#include <string.h>

#include <uv.h>

/* The descriptions, one string each in one array (a table of pointers
 * would cost 8 bytes of RELRO each): ovl's codes from OVL_OK down to
 * OVL_EREPLAY, then those of err_uv_codes in its order. */
static const char err_texts[] = "success\0"
                                "out of memory or limit reached\0"
                                "invalid argument\0"
                                "protocol violation\0"
                                "authentication failed\0"
                                "queue full, try again later\0"
                                "connection closed by peer\0"
                                "timed out\0"
                                "permission denied or unsafe permissions\0"
                                "no such object\0"
                                "already exists\0"
                                "not supported\0"
                                "too large\0"
                                "replayed message\0"
                                "end of file\0"
                                "unknown system error\0"
                                "invalid Unicode character\0"
                                "address family not supported\0"
                                "temporary name resolution failure\0"
                                "bad name resolution flags\0"
                                "name resolution cancelled\0"
                                "permanent name resolution failure\0"
                                "address family not supported\0"
                                "out of memory in name resolution\0"
                                "no address for host name\0"
                                "unknown host name\0"
                                "name resolution buffer overflow\0"
                                "unknown service\0"
                                "socket type not supported\0"
                                "bad name resolution hints\0"
                                "resolved protocol unknown";

/* libuv codes that are not errno values on Unix (resolver errors and a few
 * of its own); uv_strerror would allocate for codes it does not know. */
static const short err_uv_codes[] = {
    UV_EOF,          UV_UNKNOWN,      UV_ECHARSET,     UV_EAI_ADDRFAMILY, UV_EAI_AGAIN,
    UV_EAI_BADFLAGS, UV_EAI_CANCELED, UV_EAI_FAIL,     UV_EAI_FAMILY,     UV_EAI_MEMORY,
    UV_EAI_NODATA,   UV_EAI_NONAME,   UV_EAI_OVERFLOW, UV_EAI_SERVICE,    UV_EAI_SOCKTYPE,
    UV_EAI_BADHINTS, UV_EAI_PROTOCOL,
};

#define ERR_OVL_TEXTS (OVL_ERR_BASE - OVL_ERR_LAST) /* OVL_OK, OVL_ENOMEM..OVL_EREPLAY */

/* The index of err's text in err_texts, or -1. */
static int err_index(int err)
{
    if (err == OVL_OK)
        return 0;
    if (err < OVL_ERR_BASE && err > OVL_ERR_LAST)
        return OVL_ERR_BASE - err;
    for (int i = 0; i < (int)(sizeof err_uv_codes / sizeof err_uv_codes[0]); i++)
        if (err == err_uv_codes[i])
            return ERR_OVL_TEXTS + i;
    return -1;
}

/* Return a static, human-readable description of err (ovl code or -errno). */
const char *ovl_strerror(int err)
{
    int i = err_index(err);

    if (i >= 0) {
        const char *s = err_texts;

        while (i-- > 0)
            s += strlen(s) + 1;
        return s;
    }
    if (err < 0 && err > -4096) {
        /* glibc's text of a known number is static; an unknown one it
         * formats as "Unknown error N" into a shared buffer (never
         * translated: ovld keeps the C locale). strerror alone, not
         * strerror_r beside it: one library import fewer. */
        const char *s = strerror(-err);

        if (strncmp(s, "Unknown error", 13) != 0)
            return s;
    }
    return "unknown error";
}
