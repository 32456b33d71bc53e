/* err.h - ovl error codes: 0 on success, a negative code on failure.
 *
 * Codes below OVL_ERR_BASE are ovl's own; any other negative value is a
 * negated errno (libuv reports errors that way on Unix), so one
 * ovl_strerror() serves both.
 */
#ifndef OVL_LIB_ERR_H
#define OVL_LIB_ERR_H

#define OVL_WUR __attribute__((warn_unused_result))

enum ovl_err {
    OVL_OK = 0,
    OVL_ERR_BASE = -1000,
    OVL_ENOMEM = -1001,  /* allocation failed or a configured cap is reached */
    OVL_EINVAL = -1002,  /* malformed argument, config value or request */
    OVL_EPROTO = -1003,  /* peer violated the wire protocol */
    OVL_ECRYPTO = -1004, /* authentication tag or signature did not verify */
    OVL_EAGAIN = -1005,  /* queue full: retry after the drain callback */
    OVL_ECLOSED = -1006, /* peer closed the connection */
    OVL_ETIMEDOUT = -1007,
    OVL_EPERM = -1008,   /* unsafe permissions (key file, socket) or not allowed */
    OVL_ENOENT = -1009,  /* no such object (file, peer, transport) */
    OVL_EEXIST = -1010,  /* already exists (socket in use, duplicate key) */
    OVL_EUNSUPP = -1011, /* unsupported version, suite, scheme or feature */
    OVL_ETOOBIG = -1012, /* input larger than the protocol or a cap allows */
    OVL_EREPLAY = -1013, /* counter already seen */
    OVL_ERR_LAST = -1014,
};

/* Return a static, human-readable description of err (ovl code or -errno). */
const char *ovl_strerror(int err);

#endif
