/*
 * base/time.h -- clocks and civil-date arithmetic (proleptic Gregorian
 * calendar, days counted from 1970-01-01).
 *
 * Thread model: pure functions, callable from any thread.
 */
#ifndef EF_BASE_TIME_H
#define EF_BASE_TIME_H

#include <stdint.h>

/* Monotonic and wall clocks in milliseconds. */
int64_t ef_now_ms(void);
int64_t ef_wall_ms(void);
/* The monotonic clock in microseconds (durations finer than a millisecond). */
int64_t ef_now_us(void);

/* Days from 1970-01-01 to year y, month m (1..12), day d (1..31); negative
 * before 1970. Exact for every y a int64_t day count can hold (H. Hinnant's
 * algorithm); m and d out of range give a day count but no meaning. */
int64_t ef_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The inverse: the date of day z (days from 1970-01-01). */
void ef_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif /* EF_BASE_TIME_H */
