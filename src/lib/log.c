/* log.c - one line per message on stderr, optionally mirrored to syslog. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "lib/clock.h"

#define OVL_LOG_LINE_MAX 1024

/* The names of the levels in their order, one string (a table of
 * pointers would be 32 bytes of RELRO). */
static const char level_names[] = "error\0warn\0info\0debug";

/* Set up lg; opens syslog when use_syslog is true. */
void log_init(struct ovl_log *lg, const char *ident, enum ovl_log_level level, bool use_syslog)
{
    if (!lg)
        return;
    lg->level = level;
    lg->use_syslog = use_syslog;
    lg->opened_syslog = false;
    lg->ident = ident ? ident : "ovl";
    if (use_syslog) {
        openlog(lg->ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        lg->opened_syslog = true;
    }
}

/* Close syslog if it was opened (stderr is unbuffered: nothing to flush). */
void log_close(struct ovl_log *lg)
{
    if (lg && lg->opened_syslog) {
        closelog();
        lg->opened_syslog = false;
    }
}

/* Parse "error", "warn", "info" or "debug" into *out; OVL_EINVAL otherwise. */
int log_level_parse(const char *s, enum ovl_log_level *out)
{
    if (!s || !out)
        return OVL_EINVAL;
    for (int i = OVL_LOG_ERROR; i <= OVL_LOG_DEBUG; i++) {
        if (strcmp(s, log_level_name((enum ovl_log_level)i)) == 0) {
            *out = (enum ovl_log_level)i;
            return 0;
        }
    }
    return OVL_EINVAL;
}

/* Return the name of level ("error" .. "debug"). */
const char *log_level_name(enum ovl_log_level level)
{
    const char *s = level_names;

    if ((unsigned)level > OVL_LOG_DEBUG)
        return "unknown";
    for (unsigned i = 0; i < (unsigned)level; i++)
        s += strlen(s) + 1;
    return s;
}

static int syslog_priority(enum ovl_log_level level)
{
    switch (level) {
    case OVL_LOG_ERROR:
        return LOG_ERR;
    case OVL_LOG_WARN:
        return LOG_WARNING;
    case OVL_LOG_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

/* Messages may quote peer input: keep each one on a single line so nobody
 * can forge extra log lines. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            *s = '?';
    }
}

/* Write now as YYYY-MM-DDTHH:MM:SS.mmmZ (UTC), counting whole years and
 * months off the days since 1970: two library imports fewer than
 * gmtime_r and strftime. */
static void format_time(char *out, size_t outlen)
{
    static const uint8_t mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    uint64_t ms = clock_wall_ms(), s = ms / 1000; /* 0, the epoch, if the clock fails */
    uint32_t days = (uint32_t)(s / 86400), sod = (uint32_t)(s % 86400), y = 1970, m = 0, leap, len;

    for (;; y++, days -= len) {
        leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        if (days < (len = 365 + leap))
            break;
    }
    while (days >= (len = mdays[m] + (m == 1 && leap)))
        days -= len, m++;
    snprintf(out, outlen, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m + 1, days + 1, sod / 3600,
             sod / 60 % 60, sod % 60, (unsigned)(ms % 1000));
}

/* Write one line "TIMESTAMP ident[pid]: LEVEL: message" to stderr (and syslog)
 * when lg prints messages at level. */
void log_msg(const struct ovl_log *lg, enum ovl_log_level level, const char *fmt, ...)
{
    char msg[OVL_LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(lg, level))
        return; /* the macros of log.h call us whatever the level */
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(msg, sizeof(msg), "(unformattable message)");
    } else if ((size_t)n >= sizeof(msg)) {
        /* Mark the cut so a reader knows the line is incomplete. */
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    }
    sanitize(msg);

    char when[48];
    format_time(when, sizeof(when));
    const char *ident = lg && lg->ident ? lg->ident : "ovl";
    fprintf(stderr, "%s %s[%ld]: %s: %s\n", when, ident, (long)getpid(), log_level_name(level),
            msg);
    if (lg && lg->use_syslog && lg->opened_syslog)
        syslog(syslog_priority(level), "%s", msg);
}
