/* `xboot-bench floor`: what one enrollment must cost at least in crypto on one core, next to
 * what the project's issuance path costs, so that server throughput can be judged against the
 * limit rather than in the abstract (DESIGN.md section 7). */
#ifndef XBB_FLOOR_H
#define XBB_FLOOR_H

/* argv[0] is "floor". Returns the exit status. */
int xbb_floor_main(int argc, char **argv);

#endif
