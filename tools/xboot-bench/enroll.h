/* `xboot-bench enroll`: prepare (pool, registry, connections), run the warm-up and the timed
 * window, verify the sample, report. */
#ifndef XBB_ENROLL_H
#define XBB_ENROLL_H

/* argv[0] is "enroll". Returns the exit status. */
int xbb_enroll_main(int argc, char **argv);

#endif
