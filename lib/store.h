/* The device's store: DIR/device.key, device.pem, chain.pem and optionally device.pfx.
 *
 * All files change together or not at all. The visible names are symbolic links into
 * DIR/..data, itself a link to a generation directory DIR/..gen-XXXXXX. A write fills a new
 * generation directory (each file written and fsync'd, then the directory fsync'd), then
 * switches ..data to it with one rename(2) and fsyncs DIR; only then is the old generation
 * removed. A crash anywhere leaves ..data on the old generation or on the new one, never on a
 * half-written file. (Kubernetes writes Secret volumes the same way.) */
#ifndef XBOOT_LIB_STORE_H
#define XBOOT_LIB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define XBS_KEY "device.key"
#define XBS_CERT "device.pem"
#define XBS_CHAIN "chain.pem"
#define XBS_PFX "device.pfx"

/* The contents of one generation. A NULL member is not written (and its link is removed). */
typedef struct xbs_files {
    const char *key_pem;
    size_t key_pem_len;
    const char *cert_pem;
    size_t cert_pem_len;
    const char *chain_pem;
    size_t chain_pem_len;
    const uint8_t *pfx;
    size_t pfx_len;
} xbs_files;

/* Test hook: when not NULL, called with a step number (1, 2, ...) before each file-system step
 * of xbs_write, so a test can kill the process between any two writes (tests/e2e/store_crash). */
typedef void (*xbs_step_hook)(int step);

/* Take the store's lock (the directory is created, mode 0700, if missing), waiting at most
 * wait_ms for another process that holds it: one enrollment per store at a time, so two
 * runs do not both send a CSR. Release with xbs_unlock. */
xboot_err xbs_lock(const char *dir, long wait_ms, int *lock_fd, xbc_detail *detail);
void xbs_unlock(int lock_fd);

/* Write a new generation into dir and switch to it. The caller holds xbs_lock. */
xboot_err xbs_write(const char *dir, const xbs_files *files, xbs_step_hook hook,
                    xbc_detail *detail);

/* Check, before anything is sent, that dir can take a write, so an issued certificate is
 * never lost to a store that cannot hold it. */
xboot_err xbs_writable(const char *dir, xbc_detail *detail);

/* Open the current generation once, so that every file read through *gen_fd belongs to the
 * same generation even while another process switches the store. An empty store is
 * XBOOT_ERR_STORAGE with *missing = 1 (and the detail says "nothing stored"). */
xboot_err xbs_open_current(const char *dir, int *gen_fd, int *missing, xbc_detail *detail);

/* 1 if the opened generation has the file. */
int xbs_has(int gen_fd, const char *name);

/* Read one file of an opened generation (malloc'd, NUL-terminated, at most 1 MiB).
 * XBOOT_ERR_STORAGE on failure, with *missing = 1 when the file is not there. */
xboot_err xbs_read(int gen_fd, const char *name, uint8_t **out, size_t *len, int *missing,
                   xbc_detail *detail);

#endif
