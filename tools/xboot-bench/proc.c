#include "proc.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A bound on the processes looked at: far above what one machine runs. */
#define XBB_PROC_MAX 65536

typedef struct xbb_pstat {
    pid_t pid, ppid;
    unsigned long long ticks; /* utime + stime */
} xbb_pstat;

static int xbb_read_stat(pid_t pid, xbb_pstat *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name is in parentheses and may itself hold spaces or ')': skip to the last. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    /* After ")": state(3) ppid(4) ... utime(14) stime(15), counting fields from 1. */
    char state;
    int ppid;
    unsigned long long utime, stime;
    if (sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &ppid, &utime,
               &stime) != 4)
        return -1;
    out->pid = pid;
    out->ppid = ppid;
    out->ticks = utime + stime;
    return 0;
}

static long xbb_read_rss(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long kib = 0;
    for (int i = 0; i < 128 && fgets(line, sizeof line, f) != NULL; i++)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* Every process on the machine with its parent; ppid links give the tree. */
static size_t xbb_all_procs(xbb_pstat *all, size_t max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while (n < max && (de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        if (xbb_read_stat((pid_t)atoi(de->d_name), &all[n]) == 0)
            n++;
    }
    closedir(d);
    return n;
}

int xbb_proc_tree_usage(pid_t root, xbb_proc_usage *out)
{
    memset(out, 0, sizeof *out);
    xbb_pstat *all = malloc(XBB_PROC_MAX * sizeof *all);
    pid_t *tree = malloc(XBB_PROC_MAX * sizeof *tree);
    size_t n = all && tree ? xbb_all_procs(all, XBB_PROC_MAX) : 0;
    size_t nt = 0;
    unsigned long long ticks = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == root) {
            tree[nt++] = root;
            ticks += all[i].ticks;
        }
    /* Breadth-first over the tree: each process is appended once, when its parent is seen. */
    for (size_t head = 0; head < nt; head++)
        for (size_t i = 0; i < n && nt < XBB_PROC_MAX; i++)
            if (all[i].ppid == tree[head] && all[i].pid != root) {
                tree[nt++] = all[i].pid;
                ticks += all[i].ticks;
            }
    long rss = 0;
    for (size_t i = 0; i < nt; i++)
        rss += xbb_read_rss(tree[i]);
    free(all);
    free(tree);
    if (nt == 0)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    out->cpu_s = (double)ticks / (double)(hz > 0 ? hz : 100);
    out->rss_kib = rss;
    out->processes = (int)nt;
    return 0;
}
