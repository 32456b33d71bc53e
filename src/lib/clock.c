/* clock.c - libuv's clocks in the units ovl uses. */
#include <uv.h>

#include "lib/clock.h"

uint64_t clock_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

uint64_t clock_now_us(void)
{
    return uv_hrtime() / 1000u;
}

uint64_t clock_wall_ms(void)
{
    uv_timeval64_t tv;

    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}
