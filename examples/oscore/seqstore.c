/*
 * seqstore.c - the B.1.1 persistence hook of the OSCORE examples: keeps the
 * Sender Sequence Number ceiling in a small file, durably.
 *
 * What: at start-up the file is locked and read (missing = 0, anything else
 * unreadable or malformed = a start-up error); the library calls
 * seqstore_persist with a new ceiling *before* it uses a sequence number at
 * or above the old one, and only uses it once we return CL_OK. The new value
 * goes to "<file>.tmp", which is fsync'ed, renamed over the file, and then
 * the directory is fsync'ed so that the rename itself survives a crash.
 *
 * Why: AES-CCM and AES-GCM fail catastrophically when a nonce repeats, and
 * an OSCORE nonce is (Sender ID, sequence number). A restarted endpoint must
 * therefore never start below a number it may already have used. Writing
 * the number ahead of use (K at a time) costs one fsync per K messages;
 * treating a damaged file as "start at 0" would throw all of that away, so
 * a damaged file stops the program with a message instead. The lock file
 * stops a second process with the same seq_file (and hence, presumably, the
 * same context) from walking the same sequence numbers.
 */
#include "seqstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX 64 /* far more than 13 digits and a newline */

static void set_dir(seqstore_t *s)
{
    const char *slash = strrchr(s->path, '/');

    if (slash == NULL)
        snprintf(s->dir, sizeof s->dir, ".");
    else if (slash == s->path)
        snprintf(s->dir, sizeof s->dir, "/");
    else
        snprintf(s->dir, sizeof s->dir, "%.*s", (int)(slash - s->path), s->path);
}

static bool take_lock(seqstore_t *s, char *err, size_t err_size)
{
    char lock_path[CONFIG_PATH_MAX + 8];
    struct flock fl;

    snprintf(lock_path, sizeof lock_path, "%s.lock", s->path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "seq_file %s: cannot create lock file %s: %s", s->path, lock_path,
                 strerror(errno));
        return false;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if ((e == EACCES || e == EAGAIN) && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            snprintf(err, err_size,
                     "seq_file %s is in use by process %ld; two endpoints must never share "
                     "one sequence number space",
                     s->path, (long)fl.l_pid);
        else
            snprintf(err, err_size, "seq_file %s: cannot lock %s: %s", s->path, lock_path,
                     strerror(e));
        close(fd);
        return false;
    }
    s->lock_fd = fd;
    s->locked = true;
    return true;
}

/* Exactly: 1..13 decimal digits, one '\n', end of file. */
static bool parse_ceiling(const char *buf, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < len && buf[i] >= '0' && buf[i] <= '9' && i < 13)
        v = v * 10 + (uint64_t)(buf[i++] - '0');
    if (i == 0 || i + 1 != len || buf[i] != '\n')
        return false;
    *out = v;
    return true;
}

bool seqstore_open(seqstore_t *s, const char *path, uint64_t *initial_ssn, char *err,
                   size_t err_size)
{
    char buf[FILE_MAX];
    size_t len = 0;
    uint64_t v;

    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    if (path == NULL || path[0] == '\0' || strlen(path) >= sizeof s->path) {
        snprintf(err, err_size, "seq_file: missing or too long path");
        return false;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->tmp, sizeof s->tmp, "%s.tmp", path);
    set_dir(s);
    if (!take_lock(s, err, err_size))
        return false;

    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) { /* first start of this context */
            *initial_ssn = 0;
            s->ceiling = 0;
            return true;
        }
        snprintf(err, err_size, "seq_file %s: cannot open: %s", s->path, strerror(errno));
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "seq_file %s: read error: %s", s->path, strerror(errno));
            close(fd);
            goto fail;
        }
        if (n == 0 || (len += (size_t)n) == sizeof buf)
            break;
    }
    close(fd);
    if (!parse_ceiling(buf, len, &v)) {
        snprintf(err, err_size,
                 "seq_file %s is corrupt (expected one decimal number and a newline); refusing "
                 "to start: restarting at 0 would reuse nonces. Restore it, or re-key the "
                 "context and delete the file",
                 s->path);
        goto fail;
    }
    if (v > CL_OSCORE_SSN_MAX + 1) {
        snprintf(err, err_size,
                 "seq_file %s is corrupt (ceiling %" PRIu64 " is beyond 2^40); refusing to start",
                 s->path, v);
        goto fail;
    }
    if (v > CL_OSCORE_SSN_MAX) {
        snprintf(err, err_size,
                 "seq_file %s: the sequence number space of this context is used up "
                 "(ceiling %" PRIu64 "); a new context (new keys or ID Context) is needed",
                 s->path, v);
        goto fail;
    }
    s->existed = true;
    s->ceiling = v;
    *initial_ssn = v;
    return true;
fail:
    seqstore_close(s);
    return false;
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

cl_status_t seqstore_persist(void *arg, const struct cl_oscore_ctx *ctx, uint64_t ceiling)
{
    seqstore_t *s = arg;
    char buf[32];
    const char *what;
    int fd = -1, dfd = -1, rc;

    (void)ctx;
    if (s == NULL || !s->locked)
        return CL_ERR_PERSIST;
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", ceiling);
    errno = 0;
    what = "create its temporary file";
    fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    what = "write its temporary file";
    if (!write_all(fd, buf, (size_t)n))
        goto fail;
    what = "fsync its temporary file";
    if (fsync(fd) != 0)
        goto fail;
    what = "close its temporary file";
    rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto fail;
    what = "rename its temporary file into place";
    if (rename(s->tmp, s->path) != 0)
        goto fail;
    what = "fsync its directory";
    dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        goto fail;
    close(dfd);
    s->ceiling = ceiling;
    return CL_OK;
fail:
    snprintf(s->err, sizeof s->err, "seq_file %s: cannot %s: %s", s->path, what,
             errno != 0 ? strerror(errno) : "short write");
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    unlink(s->tmp);
    return CL_ERR_PERSIST;
}

void seqstore_close(seqstore_t *s)
{
    if (s == NULL)
        return;
    if (s->locked)
        close(s->lock_fd); /* releases the fcntl lock */
    s->locked = false;
    s->lock_fd = -1;
}
