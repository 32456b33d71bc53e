/* log.c - one line per message on stderr, optionally mirrored to syslog. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"

#define OVL_LOG_LINE_MAX 1024

static const char *const level_names[] = {"error", "warn", "info", "debug"};

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

/* Flush stderr and close syslog if it was opened. */
void log_close(struct ovl_log *lg)
{
    fflush(stderr);
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
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum ovl_log_level)i;
            return 0;
        }
    }
    return OVL_EINVAL;
}

/* Return the name of level ("error" .. "debug"). */
const char *log_level_name(enum ovl_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
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

static void format_time(char *out, size_t outlen)
{
    uint64_t ms = clock_wall_ms(); /* 0, the epoch, if the clock fails */
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
        return;
    }
    char day[32];
    if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        day[0] = '\0';
    snprintf(out, outlen, "%s.%03ldZ", day, (long)(ms % 1000));
}

/* Write one line "TIMESTAMP ident[pid]: LEVEL: message" to stderr (and syslog). */
void log_msg(const struct ovl_log *lg, enum ovl_log_level level, const char *fmt, ...)
{
    char msg[OVL_LOG_LINE_MAX];
    va_list ap;
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
    fflush(stderr);
    if (lg && lg->use_syslog && lg->opened_syslog)
        syslog(syslog_priority(level), "%s", msg);
}
