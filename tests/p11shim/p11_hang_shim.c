/* A PKCS#11 module for tests: SoftHSM2 (XB_P11_SHIM_TARGET) with a C_Sign that hangs while
 * the file named by XB_P11_SHIM_HANG exists, as a network HSM that stopped answering does.
 * test_signer_pkcs11 uses it to see a token call time out without stopping the caller. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST_PTR real;

static CK_RV shim_sign(CK_SESSION_HANDLE sess, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len)
{
    const char *hang = getenv("XB_P11_SHIM_HANG");
    /* Bounded: 30 s at most, so a broken test cannot leave a process behind for ever. */
    for (int i = 0; hang != NULL && i < 300 && access(hang, F_OK) == 0; i++)
        usleep(100000);
    return real->C_Sign(sess, data, len, sig, sig_len);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (real == NULL) {
        const char *target = getenv("XB_P11_SHIM_TARGET");
        void *dl = target != NULL ? dlopen(target, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get =
            dl != NULL ? (CK_C_GetFunctionList)(uintptr_t)dlsym(dl, "C_GetFunctionList") : NULL;
        if (get == NULL || get(&real) != CKR_OK)
            return CKR_GENERAL_ERROR;
        shim = *real;
        shim.C_Sign = shim_sign;
    }
    *out = &shim;
    return CKR_OK;
}
