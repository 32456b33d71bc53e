/* test_log.c - the logger (lib/log.c): a message is written only at or
 * above the configured level, whichever macro sends it, and a NULL logger
 * writes nothing. stderr is pointed at a temporary file for each test. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

#include "check_main.h"

/* Run fn with stderr in a temporary file; return what it wrote (static). */
static const char *captured(void (*fn)(struct ovl_log *lg), enum ovl_log_level level)
{
    static char out[4096];
    struct ovl_log lg;
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
    log_init(&lg, "test", level, false);
    fn(&lg);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

static void log_each(struct ovl_log *lg)
{
    log_error(lg, "E-%d", 1);
    log_warn(lg, "W-%d", 2);
    log_info(lg, "I-%d", 3);
    log_debug(lg, "D-%d", 4);
}

static void log_null(struct ovl_log *lg)
{
    (void)lg;
    log_error(NULL, "N-%d", 5);
}

/* Which of the four messages each level lets through. */
static const struct {
    enum ovl_log_level level;
    const char *want, *not_want;
} lv_cases[] = {
    {OVL_LOG_ERROR, "E", "WID"},
    {OVL_LOG_WARN, "EW", "ID"},
    {OVL_LOG_INFO, "EWI", "D"},
    {OVL_LOG_DEBUG, "EWID", ""},
};

START_TEST(test_levels)
{
    const char *out = captured(log_each, lv_cases[_i].level);
    char tag[3] = "X-";

    for (const char *c = lv_cases[_i].want; *c; c++) {
        tag[0] = *c;
        ck_assert_msg(strstr(out, tag), "level %d lost %s: %s", (int)lv_cases[_i].level, tag, out);
    }
    for (const char *c = lv_cases[_i].not_want; *c; c++) {
        tag[0] = *c;
        ck_assert_msg(!strstr(out, tag), "level %d wrote %s: %s", (int)lv_cases[_i].level, tag,
                      out);
    }
    ck_assert_ptr_nonnull(strstr(out, ": error: E-1\n"));
}
END_TEST

START_TEST(test_null_logger)
{
    ck_assert_str_eq(captured(log_null, OVL_LOG_DEBUG), "");
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_levels, 0, (int)(sizeof(lv_cases) / sizeof(lv_cases[0])));
    tcase_add_test(tc, test_null_logger);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(log_suite)
