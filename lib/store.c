/* The device's store (lib/store.h): generation directories switched by one rename. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define XBS_DATA "..data"
#define XBS_DATA_TMP "..data.tmp"
#define XBS_GEN_PREFIX "..gen-"
#define XBS_MAX_FILE (1024 * 1024)

typedef struct xbs_writer {
    int dirfd;
    xbs_step_hook hook;
    int step;
    xbc_detail *detail;
} xbs_writer;

/* Before each step that changes the file system: the test hook may end the process here. */
static void xbs_step(xbs_writer *w)
{
    w->step++;
    if (w->hook != NULL)
        w->hook(w->step);
}

static xboot_err xbs_errno(xbc_detail *detail, const char *what, const char *name)
{
    int saved = errno;
    return xbc_fail(detail, XBOOT_ERR_STORAGE, "%s %s: %s", what, name, strerror(saved));
}

static int xbs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One file of the new generation: created exclusively, written, fsync'd. */
static xboot_err xbs_write_file(xbs_writer *w, int gen_fd, const char *name, const void *data,
                                size_t len, mode_t mode)
{
    xbs_step(w);
    int fd = openat(gen_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return xbs_errno(w->detail, "create", name);
    /* The umask must not widen or narrow what the store promises (0600 for the key). */
    int ok = fchmod(fd, mode) == 0 && xbs_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok ? XBOOT_OK : xbs_errno(w->detail, "write", name);
}

/* Make `name` a link to "..data/name" unless it already is one. */
static xboot_err xbs_link_visible(xbs_writer *w, const char *name)
{
    char want[64], have[64];
    snprintf(want, sizeof want, XBS_DATA "/%s", name);
    ssize_t n = readlinkat(w->dirfd, name, have, sizeof have - 1);
    if (n >= 0) {
        have[n] = '\0';
        if (strcmp(have, want) == 0)
            return XBOOT_OK;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    xbs_step(w);
    unlinkat(w->dirfd, tmp, 0);
    if (symlinkat(want, w->dirfd, tmp) != 0)
        return xbs_errno(w->detail, "link", name);
    xbs_step(w);
    if (renameat(w->dirfd, tmp, w->dirfd, name) != 0)
        return xbs_errno(w->detail, "rename", name);
    return XBOOT_OK;
}

/* Remove a visible link whose file the new generation does not have (only our own links). */
static void xbs_unlink_visible(xbs_writer *w, const char *name)
{
    char want[64], have[64];
    snprintf(want, sizeof want, XBS_DATA "/%s", name);
    ssize_t n = readlinkat(w->dirfd, name, have, sizeof have - 1);
    if (n < 0)
        return;
    have[n] = '\0';
    if (strcmp(have, want) == 0) {
        xbs_step(w);
        unlinkat(w->dirfd, name, 0);
    }
}

/* Remove every generation directory but `keep` (old ones, and orphans of a crashed write). */
static void xbs_remove_old_generations(xbs_writer *w, const char *keep)
{
    int fd = dup(w->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, XBS_GEN_PREFIX, strlen(XBS_GEN_PREFIX)) != 0 ||
            strcmp(e->d_name, keep) == 0)
            continue;
        int gen = openat(w->dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (gen < 0)
            continue;
        static const char *const names[] = {XBS_KEY, XBS_CERT, XBS_CHAIN, XBS_PFX};
        xbs_step(w);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            unlinkat(gen, names[i], 0);
        close(gen);
        unlinkat(w->dirfd, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* Fill the new generation directory and make it durable. */
static xboot_err xbs_fill_generation(xbs_writer *w, const char *gen, const xbs_files *f)
{
    int gen_fd = openat(w->dirfd, gen, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (gen_fd < 0)
        return xbs_errno(w->detail, "open", gen);
    xboot_err e = XBOOT_OK;
    if (f->key_pem != NULL)
        e = xbs_write_file(w, gen_fd, XBS_KEY, f->key_pem, f->key_pem_len, 0600);
    if (e == XBOOT_OK && f->cert_pem != NULL)
        e = xbs_write_file(w, gen_fd, XBS_CERT, f->cert_pem, f->cert_pem_len, 0644);
    if (e == XBOOT_OK && f->chain_pem != NULL)
        e = xbs_write_file(w, gen_fd, XBS_CHAIN, f->chain_pem, f->chain_pem_len, 0644);
    if (e == XBOOT_OK && f->pfx != NULL)
        e = xbs_write_file(w, gen_fd, XBS_PFX, f->pfx, f->pfx_len, 0600);
    if (e == XBOOT_OK) {
        xbs_step(w);
        if (fsync(gen_fd) != 0)
            e = xbs_errno(w->detail, "sync", gen);
    }
    close(gen_fd);
    return e;
}

/* Point ..data at gen with one rename, and make the switch durable. */
static xboot_err xbs_switch(xbs_writer *w, const char *gen)
{
    xbs_step(w);
    unlinkat(w->dirfd, XBS_DATA_TMP, 0);
    if (symlinkat(gen, w->dirfd, XBS_DATA_TMP) != 0)
        return xbs_errno(w->detail, "link", XBS_DATA_TMP);
    xbs_step(w);
    if (renameat(w->dirfd, XBS_DATA_TMP, w->dirfd, XBS_DATA) != 0)
        return xbs_errno(w->detail, "rename", XBS_DATA);
    xbs_step(w);
    if (fsync(w->dirfd) != 0)
        return xbs_errno(w->detail, "sync", "store directory");
    return XBOOT_OK;
}

static xboot_err xbs_new_generation(xbs_writer *w, const char *dir, char *gen, size_t gen_len)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/" XBS_GEN_PREFIX "XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return xbc_fail(w->detail, XBOOT_ERR_STORAGE, "store path too long");
    xbs_step(w);
    if (mkdtemp(path) == NULL)
        return xbs_errno(w->detail, "create generation in", dir);
    chmod(path, 0755); /* the key inside is 0600; certificates may be read by others */
    snprintf(gen, gen_len, "%s", strrchr(path, '/') + 1);
    return XBOOT_OK;
}

static xboot_err xbs_write_locked(xbs_writer *w, const char *dir, const xbs_files *f)
{
    char gen[64];
    xboot_err e = xbs_new_generation(w, dir, gen, sizeof gen);
    if (e == XBOOT_OK)
        e = xbs_fill_generation(w, gen, f);
    /* The visible links exist before the switch; on a first write they dangle until then,
     * so every file appears at the same instant. */
    if (e == XBOOT_OK && f->key_pem != NULL)
        e = xbs_link_visible(w, XBS_KEY);
    if (e == XBOOT_OK)
        e = xbs_link_visible(w, XBS_CERT);
    if (e == XBOOT_OK)
        e = xbs_link_visible(w, XBS_CHAIN);
    if (e == XBOOT_OK && f->pfx != NULL)
        e = xbs_link_visible(w, XBS_PFX);
    if (e == XBOOT_OK)
        e = xbs_switch(w, gen);
    if (e != XBOOT_OK)
        return e; /* the old generation is still current; the orphan goes on the next write */
    if (f->key_pem == NULL)
        xbs_unlink_visible(w, XBS_KEY);
    if (f->pfx == NULL)
        xbs_unlink_visible(w, XBS_PFX);
    xbs_remove_old_generations(w, gen);
    return XBOOT_OK;
}

xboot_err xbs_write(const char *dir, const xbs_files *files, xbs_step_hook hook, xbc_detail *detail)
{
    xbs_writer w = {.dirfd = -1, .hook = hook, .detail = detail};
    w.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w.dirfd < 0)
        return xbs_errno(detail, "open", dir);
    xboot_err e = xbs_write_locked(&w, dir, files);
    close(w.dirfd);
    return e;
}

xboot_err xbs_lock(const char *dir, long wait_ms, int *lock_fd, xbc_detail *detail)
{
    *lock_fd = -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return xbs_errno(detail, "create", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return xbs_errno(detail, "open", dir);
    /* Poll rather than block: a holder that hangs must not hang us for ever. */
    for (long waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited += 100) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            xboot_err e = xbs_errno(detail, "lock", dir);
            close(fd);
            return e;
        }
        if (waited >= wait_ms) {
            close(fd);
            return xbc_fail(detail, XBOOT_ERR_STORAGE,
                            "%s is locked by another enrollment (waited %ld ms)", dir, waited);
        }
        struct timespec nap = {0, 100 * 1000000L};
        nanosleep(&nap, NULL);
    }
    *lock_fd = fd;
    return XBOOT_OK;
}

void xbs_unlock(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd); /* releases the flock */
}

int xbs_has(int gen_fd, const char *name)
{
    struct stat st;
    return fstatat(gen_fd, name, &st, 0) == 0;
}

xboot_err xbs_writable(const char *dir, xbc_detail *detail)
{
    if (access(dir, W_OK | X_OK) != 0)
        return xbs_errno(detail, "write to", dir);
    return XBOOT_OK;
}

xboot_err xbs_open_current(const char *dir, int *gen_fd, int *missing, xbc_detail *detail)
{
    *missing = 0;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/" XBS_DATA, dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return xbc_fail(detail, XBOOT_ERR_STORAGE, "store path too long");
    *gen_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*gen_fd >= 0)
        return XBOOT_OK;
    if (errno == ENOENT) {
        *missing = 1;
        return xbc_fail(detail, XBOOT_ERR_STORAGE, "nothing stored in %s yet", dir);
    }
    return xbs_errno(detail, "open", path);
}

xboot_err xbs_read(int gen_fd, const char *name, uint8_t **out, size_t *len, int *missing,
                   xbc_detail *detail)
{
    *out = NULL;
    *len = 0;
    *missing = 0;
    int fd = openat(gen_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = 1;
            return xbc_fail(detail, XBOOT_ERR_STORAGE, "%s not stored", name);
        }
        return xbs_errno(detail, "open", name);
    }
    uint8_t *buf = malloc(XBS_MAX_FILE + 1);
    size_t used = 0;
    ssize_t r = 0;
    while (buf != NULL && used <= XBS_MAX_FILE &&
           (r = read(fd, buf + used, XBS_MAX_FILE + 1 - used)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        used += (size_t)r;
    }
    int saved = errno;
    close(fd);
    if (buf == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "reading %s", name);
    if (r < 0 || used > XBS_MAX_FILE) {
        free(buf);
        errno = saved;
        return r < 0 ? xbs_errno(detail, "read", name)
                     : xbc_fail(detail, XBOOT_ERR_STORAGE, "%s is larger than 1 MiB", name);
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return XBOOT_OK;
}
