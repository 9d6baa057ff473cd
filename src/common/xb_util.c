#include "xb_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

xb_err xb_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len, xb_diag *d)
{
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return xb_fail(d, XB_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        if (cap >= max)
            break;
        cap = cap * 2 > max ? max : cap * 2;
        uint8_t *nb = realloc(buf, cap + 1);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (buf == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory reading %s", path);
    if (err) {
        free(buf);
        return xb_fail(d, XB_ERR_IO, "cannot read %s", path);
    }
    if (len >= max && max > 0) {
        free(buf);
        return xb_fail(d, XB_ERR_IO, "%s is larger than %zu bytes", path, max);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return XB_OK;
}

xb_err xb_write_file_new(const char *path, const void *data, size_t len, unsigned mode, xb_diag *d)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return xb_fail(d, errno == EEXIST ? XB_ERR_EXISTS : XB_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    /* The umask may have narrowed mode; make it exact (0600 keys, 0644 certificates). */
    if (fchmod(fd, (mode_t)mode) != 0) {
        close(fd);
        return xb_fail(d, XB_ERR_IO, "cannot chmod %s: %s", path, strerror(errno));
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return xb_fail(d, XB_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return xb_fail(d, XB_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return XB_OK;
}

void xb_time_rfc3339(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int xb_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

int xb_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void xb_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

char *xb_path_resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s/%s", dir, path);
    return s;
}
