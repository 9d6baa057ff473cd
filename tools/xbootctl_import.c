/* xbootctl device import FILE.csv: a factory's device list, all or nothing.
 *
 * One device a line: ID, or ID,sha256:HEX (the SHA-256 of its enrollment secret), or
 * ID,GROUP (a member of an existing group). Blank lines and lines starting with '#' are
 * skipped, as is a first line "id" or "id,credential" (any case), the usual CSV header. CRLF
 * line ends are accepted. Every line is checked before the registry is touched, and the
 * registry adds the whole list in one transaction, so a bad line anywhere imports nothing and
 * is named by its number. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xb_credential.h"
#include "xb_regid.h"
#include "xbootctl.h"

/* The biggest file read: 1 million 200-byte lines. */
#define IMPORT_MAX_BYTES (256L * 1024 * 1024)

/* Sized once for every line of the file, never grown: spec[i].secret_sha256 points into hash,
 * so moving hash (a realloc) would leave the earlier specs pointing at freed memory. */
typedef struct import_list {
    xb_device_spec *spec;
    uint8_t (*hash)[XB_SECRET_HASH_LEN];
    size_t *line; /* each spec's line number, for messages */
    size_t n, cap;
} import_list;

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return failure("cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || size > IMPORT_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return failure("%s: cannot read it, or it is larger than %ld MiB", path,
                       IMPORT_MAX_BYTES >> 20);
    }
    buf = malloc((size_t)size + 1);
    size_t got = buf != NULL ? fread(buf, 1, (size_t)size, f) : 0;
    int bad = ferror(f) || got != (size_t)size;
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        return failure("cannot read %s", path);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return EXIT_OK;
}

/* Room for one device per line of buf: the arrays are not touched beyond the devices found,
 * so blank and comment lines cost address space only. */
static int list_alloc(const char *buf, size_t len, import_list *l)
{
    size_t lines = 1;
    for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++)
        lines++;
    if (lines > SIZE_MAX / sizeof *l->hash)
        return -1;
    l->spec = malloc(lines * sizeof *l->spec);
    l->hash = malloc(lines * sizeof *l->hash);
    l->line = malloc(lines * sizeof *l->line);
    l->cap = lines;
    return l->spec != NULL && l->hash != NULL && l->line != NULL ? 0 : -1;
}

static int is_header(const char *id, const char *second)
{
    return strcasecmp(id, "id") == 0 && (second == NULL || strcasecmp(second, "credential") == 0);
}

/* One line, NUL-terminated in place (commas and the end replaced). */
static int parse_line(const char *path, size_t lineno, char *text, import_list *l)
{
    char *second = strchr(text, ',');
    if (second != NULL) {
        *second++ = '\0';
        if (strchr(second, ',') != NULL)
            return failure("%s:%zu: more than two fields (ID[,sha256:HEX | ,GROUP]); nothing "
                           "imported",
                           path, lineno);
    }
    if (lineno == 1 && is_header(text, second))
        return EXIT_OK;
    if (!xb_regid_valid(text, strlen(text)))
        return failure("%s:%zu: invalid registration ID '%.130s' (1..128 characters of "
                       "[A-Za-z0-9-._:], ending with a letter, digit or '-'); nothing imported",
                       path, lineno, text);
    xb_device_spec *s = &l->spec[l->n];
    memset(s, 0, sizeof *s);
    s->reg_id = text;
    if (second != NULL && strncmp(second, "sha256:", 7) == 0) {
        if (xb_secret_hash_parse(second, strlen(second), l->hash[l->n]) != 0)
            return failure("%s:%zu: '%.80s' is not sha256: and 64 hex digits; nothing imported",
                           path, lineno, second);
        s->secret_sha256 = l->hash[l->n];
    } else if (second != NULL) {
        if (!xb_group_name_valid(second))
            return failure("%s:%zu: '%.80s' is neither sha256:HEX nor a group name "
                           "([A-Za-z0-9._-], 1..%d); nothing imported",
                           path, lineno, second, XB_GROUP_NAME_MAX);
        s->group = second;
    }
    l->line[l->n++] = lineno;
    return EXIT_OK;
}

static int parse_all(const char *path, char *buf, size_t len, import_list *l)
{
    size_t lineno = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        lineno++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl != NULL ? nl : end;
        if (memchr(p, '\0', (size_t)(stop - p)) != NULL)
            return failure("%s:%zu: contains a NUL byte; nothing imported", path, lineno);
        *stop = '\0';
        if (stop > p && stop[-1] == '\r')
            stop[-1] = '\0';
        if (p[0] != '\0' && p[0] != '#') {
            int rc = parse_line(path, lineno, p, l);
            if (rc != EXIT_OK)
                return rc;
        }
        p = stop + 1;
    }
    return EXIT_OK;
}

int cmd_device_import(const ctl_opts *o)
{
    const char *path = o->pos[0];
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len);
    if (rc != EXIT_OK)
        return rc;
    import_list l = {0};
    if (list_alloc(buf, len, &l) != 0)
        rc = failure("out of memory for the %zu lines of %s; nothing imported", l.cap, path);
    /* Spreadsheets save "CSV UTF-8" with a byte order mark: not part of the first ID. */
    size_t bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (rc == EXIT_OK)
        rc = parse_all(path, buf + bom, len - bom, &l);
    if (rc == EXIT_OK && l.n == 0)
        rc = failure("%s lists no device; nothing imported", path);
    xb_registry *r = NULL;
    if (rc == EXIT_OK) {
        int orc = open_registry(o, 1, &r);
        rc = orc >= 0 ? orc : EXIT_OK;
    }
    if (rc == EXIT_OK) {
        xb_diag d = {{0}};
        /* add_many sets bad only when a device is at fault; a failure of the transaction
         * itself (the registry locked, a full disk) is no line's. */
        size_t bad = SIZE_MAX;
        xb_err err = xb_registry_device_add_many(r, l.spec, l.n, &bad, &d);
        if (err != XB_OK && bad < l.n)
            rc = failure("%s:%zu: %s; nothing imported", path, l.line[bad],
                         xb_diag_message(&d, err));
        else if (err != XB_OK)
            rc = failure("%s; nothing imported from %s", xb_diag_message(&d, err), path);
        else
            printf("imported %zu devices from %s\n", l.n, path);
    }
    xb_registry_close(r);
    free(l.spec);
    free(l.hash);
    free(l.line);
    free(buf);
    return rc;
}
