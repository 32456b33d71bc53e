/* statefile.c - atomic, asynchronous writes of small state files. */
#include "lib/statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum statefile_flag {
    SF_BUSY = 1u << 0, /* a write is under way: busy is being written */
};

static void sf_start(struct statefile *f);

static char *sf_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

int statefile_init(struct statefile *f, uv_loop_t *loop, const char *dir, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->fd = -1;
    if (!dir || !*dir || !name)
        return 0;
    if (!*name || strchr(name, '/'))
        return OVL_EINVAL;
    f->path = sf_join(dir, name, "");
    f->tmp = sf_join(dir, name, ".tmp");
    if (!f->path || !f->tmp) {
        statefile_free(f);
        return OVL_ENOMEM;
    }
    return 0;
}

int statefile_read(const struct statefile *f, size_t max, uint8_t **buf, size_t *len)
{
    struct stat st;
    uint8_t *p = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *buf = NULL;
    *len = 0;
    if (!f->path)
        return OVL_ENOENT;
    fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? OVL_ENOENT : -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = OVL_EPERM;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = OVL_ETOOBIG;
        goto out;
    }
    p = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!p) {
        rc = OVL_ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) { /* shrank under us, or an error */
            rc = r < 0 ? -errno : OVL_EPROTO;
            goto out;
        }
        got += (size_t)r;
    }
    *buf = p;
    *len = got;
    p = NULL;
out:
    free(p);
    close(fd);
    return rc;
}

/* End the write under way: err 0 when renamed into place. Starts the
 * waiting one, if any. */
static void sf_done(struct statefile *f, int err)
{
    if (err) {
        f->write_errors++;
        f->last_err = err;
        if (f->fd >= 0) { /* best effort; the next write truncates it */
            uv_fs_t req;

            uv_fs_close(f->loop, &req, f->fd, NULL);
            uv_fs_req_cleanup(&req);
        }
    } else {
        f->writes++;
    }
    f->fd = -1;
    free(f->busy);
    f->busy = NULL;
    f->flags &= ~SF_BUSY;
    if (f->next)
        sf_start(f);
}

static void sf_on_rename(uv_fs_t *req)
{
    struct statefile *f = req->data;
    int rc = (int)req->result;

    uv_fs_req_cleanup(req);
    sf_done(f, rc < 0 ? rc : 0);
}

static void sf_on_close(uv_fs_t *req)
{
    struct statefile *f = req->data;
    int rc = (int)req->result;

    uv_fs_req_cleanup(req);
    f->fd = -1;
    if (rc < 0 || (rc = uv_fs_rename(f->loop, &f->req, f->tmp, f->path, sf_on_rename)) < 0)
        sf_done(f, rc);
}

static void sf_on_sync(uv_fs_t *req)
{
    struct statefile *f = req->data;
    int rc = (int)req->result;

    uv_fs_req_cleanup(req);
    if (rc < 0 || (rc = uv_fs_close(f->loop, &f->req, f->fd, sf_on_close)) < 0)
        sf_done(f, rc);
}

static void sf_on_write(uv_fs_t *req)
{
    struct statefile *f = req->data;
    ssize_t r = req->result;
    uv_buf_t b;
    int rc;

    uv_fs_req_cleanup(req);
    if (r < 0) {
        sf_done(f, (int)r);
        return;
    }
    f->off += (size_t)r;
    if (f->off < f->busy_len) { /* a short write: the rest */
        b = uv_buf_init((char *)f->busy + f->off, (unsigned)(f->busy_len - f->off));
        rc = uv_fs_write(f->loop, &f->req, f->fd, &b, 1, (int64_t)f->off, sf_on_write);
    } else {
        rc = uv_fs_fsync(f->loop, &f->req, f->fd, sf_on_sync);
    }
    if (rc < 0)
        sf_done(f, rc);
}

static void sf_on_open(uv_fs_t *req)
{
    struct statefile *f = req->data;
    int rc = (int)req->result;
    uv_buf_t b;

    uv_fs_req_cleanup(req);
    if (rc < 0) {
        sf_done(f, rc);
        return;
    }
    f->fd = rc;
    f->off = 0;
    b = uv_buf_init((char *)f->busy, (unsigned)f->busy_len);
    rc = uv_fs_write(f->loop, &f->req, f->fd, &b, 1, 0, sf_on_write);
    if (rc < 0)
        sf_done(f, rc);
}

/* Start writing the waiting contents. */
static void sf_start(struct statefile *f)
{
    int rc;

    f->busy = f->next;
    f->busy_len = f->next_len;
    f->next = NULL;
    f->next_len = 0;
    f->flags |= SF_BUSY;
    f->req.data = f;
    rc = uv_fs_open(f->loop, &f->req, f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600,
                    sf_on_open);
    if (rc < 0)
        sf_done(f, rc); /* never recurses: next is NULL now */
}

int statefile_write(struct statefile *f, const uint8_t *buf, size_t len)
{
    uint8_t *copy;

    if (!f->path)
        return 0;
    copy = malloc(len ? len : 1);
    if (!copy)
        return OVL_ENOMEM;
    if (len)
        memcpy(copy, buf, len);
    free(f->next); /* superseded: only the newest contents matter */
    f->next = copy;
    f->next_len = len;
    if (!(f->flags & SF_BUSY))
        sf_start(f);
    return 0;
}

void statefile_free(struct statefile *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->tmp);
    free(f->busy);
    free(f->next);
    f->path = f->tmp = NULL;
    f->busy = f->next = NULL;
}
