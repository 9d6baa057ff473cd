/* Running the event loop with a hard time limit, so that no phase of a run can hang. */
#ifndef XBB_LOOP_H
#define XBB_LOOP_H

#include <event2/event.h>

/* Dispatch until event_base_loopbreak, no events are left, or seconds pass. Returns 1 if the
 * time limit ended it, 0 otherwise, -1 on error. */
int xbb_loop_run(struct event_base *base, double seconds);

#endif
