/* xbootctl group add | derive | list: enrollment groups whose members enroll with a key
 * derived from the group's (Azure DPS symmetric-key group enrollment; docs/security.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "xb_base64.h"
#include "xb_credential.h"
#include "xb_regid.h"
#include "xbootctl.h"

/* 64 bytes, as DPS makes them: more than HMAC-SHA256 needs, and keys copied from a DPS portal
 * have that length too. */
#define GROUP_KEY_LEN 64

static int check_group_name(const char *name)
{
    if (xb_group_name_valid(name))
        return EXIT_OK;
    return usage_error("invalid group name '%s': 1..%d characters of [A-Za-z0-9._-]", name,
                       XB_GROUP_NAME_MAX);
}

int cmd_group_add(const ctl_opts *o)
{
    const char *name = o->pos[0];
    int rc = check_group_name(name);
    if (rc != EXIT_OK)
        return rc;
    uint8_t key[GROUP_KEY_LEN];
    if (RAND_bytes(key, sizeof key) != 1)
        return failure("cannot generate a group key: the random generator failed");
    xb_registry *r = NULL;
    rc = open_registry(o, 1, &r);
    if (rc >= 0) {
        OPENSSL_cleanse(key, sizeof key);
        return rc;
    }
    xb_diag d = {{0}};
    xb_err err = xb_registry_group_add(r, name, key, sizeof key, &d);
    xb_registry_close(r);
    char *b64 = err == XB_OK ? xb_base64_encode(key, sizeof key) : NULL;
    OPENSSL_cleanse(key, sizeof key);
    if (err != XB_OK)
        return failure_diag(&d, err);
    if (b64 == NULL)
        return failure("group %s was created, but its key could not be printed (out of memory)",
                       name);
    printf("created group %s; its key (shown this once):\n%s\n", name, b64);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    fputs(PROG ": keep the group key offline: anyone holding it can enroll any ID into the "
               "group. Factory lines need only derived keys ('group derive').\n",
          stderr);
    return EXIT_OK;
}

int cmd_group_derive(const ctl_opts *o)
{
    const char *name = o->pos[0], *id = o->pos[1];
    int rc = check_group_name(name);
    if (rc != EXIT_OK)
        return rc;
    if (!xb_regid_valid(id, strlen(id)))
        return usage_error("invalid registration ID '%s'", id);
    xb_registry *r = NULL;
    rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    xb_group g;
    xb_diag d = {{0}};
    xb_err err = xb_registry_group_get(r, name, &g, &d);
    xb_registry_close(r);
    if (err != XB_OK)
        return failure_diag(&d, err);
    char key[XB_CREDENTIAL_B64_LEN + 1];
    int ok = xb_derive_device_key(g.key, g.key_len, id, key) == 0;
    OPENSSL_cleanse(&g, sizeof g);
    if (!ok)
        return failure("cannot derive the key of %s", id);
    printf("%s\n", key);
    OPENSSL_cleanse(key, sizeof key);
    return EXIT_OK;
}

static xb_err print_group(const xb_group *g, void *ctx)
{
    (void)ctx;
    char created[32];
    format_time(g->created_at, created, sizeof created);
    printf("%-*s  %s\n", XB_GROUP_NAME_MAX / 2, g->name, created);
    return XB_OK;
}

int cmd_group_list(const ctl_opts *o)
{
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    xb_diag d = {{0}};
    xb_err err = xb_registry_group_each(r, print_group, NULL, &d);
    xb_registry_close(r);
    return err == XB_OK ? EXIT_OK : failure_diag(&d, err);
}
