/* Loaded before Debian's libfaketime 0.9.10 by tests/clock_ahead/run.sh.
 *
 * With FAKETIME_DONT_FAKE_MONOTONIC=1 (needed: Python's timed lock waits use sem_clockwait on
 * CLOCK_MONOTONIC, which libfaketime does not intercept, so a faked monotonic clock makes every
 * `Event.wait(timeout)` wait for the whole shift), libfaketime still moves an absolute
 * CLOCK_MONOTONIC deadline by the shift in clock_nanosleep, and Python's time.sleep fails with
 * EINVAL. The monotonic clock is the real one here, so such a sleep goes to the kernel as it is;
 * every other clock goes on to libfaketime. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain)
{
    if (clock == CLOCK_MONOTONIC)
        return syscall(SYS_clock_nanosleep, clock, flags, request, remain) == -1 ? errno : 0;
    clock_nanosleep_fn next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, request, remain);
}
