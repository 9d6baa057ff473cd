#include "xb_regid.h"

static int xb_regid_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int xb_regid_valid(const char *s, size_t len)
{
    if (s == 0 || len == 0 || len > XB_REGID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!xb_regid_alnum(c) && c != '-' && c != '.' && c != '_' && c != ':')
            return 0;
    }
    char last = s[len - 1];
    return xb_regid_alnum(last) || last == '-';
}
