/*
 * base/time.h -- clocks.
 */
#ifndef EF_BASE_TIME_H
#define EF_BASE_TIME_H

#include <stdint.h>

/* Monotonic and wall clocks in milliseconds. */
int64_t ef_now_ms(void);
int64_t ef_wall_ms(void);

#endif /* EF_BASE_TIME_H */
