/* CPU time and resident memory of a process and all its descendants (xbootd is a supervisor
 * with one worker process per core), read from /proc. */
#ifndef XBB_PROC_H
#define XBB_PROC_H

#include <sys/types.h>

typedef struct xbb_proc_usage {
    double cpu_s;  /* utime + stime of every live process in the tree */
    long rss_kib;  /* sum of VmRSS */
    int processes; /* how many processes the tree had */
} xbb_proc_usage;

/* 0, or -1 if root does not exist (or /proc cannot be read). */
int xbb_proc_tree_usage(pid_t root, xbb_proc_usage *out);

#endif
