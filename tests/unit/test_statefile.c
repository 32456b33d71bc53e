/* test_statefile.c - state files written atomically from the loop and
 * read back at start (lib/statefile.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "lib/statefile.h"

#include "check_main.h"

static char dir[64];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ovl-sf-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/state", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/state.tmp", dir);
    unlink(path);
    rmdir(dir);
}

START_TEST(test_write_then_read)
{
    uv_loop_t loop;
    struct statefile f;
    struct stat st;
    char path[128];
    uint8_t *buf;
    size_t len;

    mkdir_tmp();
    uv_loop_init(&loop);
    ck_assert_int_eq(statefile_init(&f, &loop, dir, "state"), 0);
    ck_assert_int_eq(statefile_read(&f, 1024, &buf, &len), OVL_ENOENT);
    ck_assert_int_eq(statefile_write(&f, (const uint8_t *)"first", 5), 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the write is in place */
    ck_assert_uint_eq(f.writes, 1);
    ck_assert_int_eq(statefile_read(&f, 1024, &buf, &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(buf, "first", 5);
    free(buf);
    snprintf(path, sizeof(path), "%s/state", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600); /* what it says may be private */
    ck_assert_int_eq(statefile_read(&f, 4, &buf, &len), OVL_ETOOBIG);
    statefile_free(&f);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    rm_tmp();
}
END_TEST

/* Writes asked for while one is under way: only the newest goes out after
 * it, so a burst costs two writes and the file ends with the last. */
START_TEST(test_burst_coalesces)
{
    uv_loop_t loop;
    struct statefile f;
    uint8_t *buf;
    size_t len;
    char text[16];

    mkdir_tmp();
    uv_loop_init(&loop);
    ck_assert_int_eq(statefile_init(&f, &loop, dir, "state"), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "v%d", i);
        ck_assert_int_eq(statefile_write(&f, (const uint8_t *)text, strlen(text)), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(f.writes, 2);
    ck_assert_uint_eq(f.write_errors, 0);
    ck_assert_int_eq(statefile_read(&f, 1024, &buf, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(buf, "v99", 3);
    free(buf);
    statefile_free(&f);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    rm_tmp();
}
END_TEST

/* A directory that cannot be written: counted, and nothing breaks. */
START_TEST(test_error_counted)
{
    uv_loop_t loop;
    struct statefile f;

    uv_loop_init(&loop);
    ck_assert_int_eq(statefile_init(&f, &loop, "/nonexistent-ovl-dir", "state"), 0);
    ck_assert_int_eq(statefile_write(&f, (const uint8_t *)"x", 1), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(f.writes, 0);
    ck_assert_uint_eq(f.write_errors, 1);
    ck_assert_int_lt(f.last_err, 0);
    statefile_free(&f);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_no_dir_keeps_nothing)
{
    uv_loop_t loop;
    struct statefile f;
    uint8_t *buf;
    size_t len;

    uv_loop_init(&loop);
    ck_assert_int_eq(statefile_init(&f, &loop, NULL, "state"), 0);
    ck_assert_int_eq(statefile_write(&f, (const uint8_t *)"x", 1), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing started */
    ck_assert_int_eq(statefile_read(&f, 10, &buf, &len), OVL_ENOENT);
    statefile_free(&f);
    statefile_free(NULL);
    ck_assert_int_eq(statefile_init(&f, &loop, "/tmp", "a/b"), OVL_EINVAL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *statefile_suite(void)
{
    Suite *s = suite_create("statefile");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_write_then_read);
    tcase_add_test(tc, test_burst_coalesces);
    tcase_add_test(tc, test_error_counted);
    tcase_add_test(tc, test_no_dir_keeps_nothing);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(statefile_suite)
