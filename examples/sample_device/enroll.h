/* Enrollment through libxboot: the client configured from the config file, progress lines on
 * stdout, and the reasons of a failure on stderr. */
#ifndef SAMPLE_DEVICE_ENROLL_H
#define SAMPLE_DEVICE_ENROLL_H

#include "xboot/xboot.h"

#include "config.h"

enum enroll_result {
    ENROLL_OK,         /* the device has a certificate (newly issued or stored) */
    ENROLL_BAD_CONFIG, /* libxboot rejected a setting from the config file */
    ENROLL_FAILED,     /* enrollment itself failed (or the client could not be created) */
};

/* Create a libxboot client configured from cfg and enroll (once: a valid stored certificate is
 * reused), printing progress on stdout and one line about the device certificate at the end.
 * On ENROLL_OK *out is the client holding the key, certificate and chain; the caller frees it
 * with xboot_client_free. Otherwise *out is NULL and the reason has been printed on stderr.
 * cfg is only read. */
enum enroll_result enroll_device(const struct config *cfg, xboot_client **out);

#endif
