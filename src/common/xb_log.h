/* Logging: one line per event on stderr, "TIME LEVEL PROG[PID] message".
 * Nothing secret is ever passed here: callers log names and codes, never keys or key material. */
#ifndef XB_LOG_H
#define XB_LOG_H

typedef enum { XB_LOG_DEBUG, XB_LOG_INFO, XB_LOG_WARN, XB_LOG_ERROR } xb_log_level;

void xb_log_init(const char *prog, xb_log_level min_level);
/* Parse "debug|info|warn|error"; returns -1 for anything else. */
int xb_log_level_parse(const char *s);
void xb_log(xb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define xb_debug(...) xb_log(XB_LOG_DEBUG, __VA_ARGS__)
#define xb_info(...) xb_log(XB_LOG_INFO, __VA_ARGS__)
#define xb_warn(...) xb_log(XB_LOG_WARN, __VA_ARGS__)
#define xb_error(...) xb_log(XB_LOG_ERROR, __VA_ARGS__)

#endif
