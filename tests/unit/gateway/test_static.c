/*
 * test_static.c -- the console's static files: loaded once from
 * <dir>/console, looked up by plain names only (no traversal, no hidden
 * files, no unknown types), ETags and If-None-Match, the size limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ef-static-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sub[96];
    snprintf(sub, sizeof(sub), "%s/console", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put("console/index.html", "<!doctype html><p>hi</p>");
    put("console/app.js", "console.log(1);");
    put("console/style.css", "p{}");
    put("console/.secret.js", "no");
    put("console/notes.md", "no");
    put("secret.txt", "outside");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"console/index.html", "console/app.js",   "console/style.css",
                           "console/.secret.js", "console/notes.md", "console/big.js",
                           "secret.txt",         "console",          ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        (void)remove(path);
    }
    return 0;
}

static void test_lookup(void **state)
{
    (void)state;
    char err[256];
    ef_static *s = ef_static_load(dir, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(ef_static_count(s), 3);
    const ef_static_file *f = ef_static_find(s, "/console");
    assert_non_null(f);
    assert_string_equal(f->name, "index.html");
    assert_string_equal(f->ctype, "text/html; charset=utf-8");
    assert_ptr_equal(ef_static_find(s, "/console/"), f);
    f = ef_static_find(s, "/console/app.js");
    assert_non_null(f);
    assert_string_equal(f->ctype, "text/javascript; charset=utf-8");
    assert_int_equal(f->len, strlen("console.log(1);"));
    assert_string_equal(ef_static_find(s, "/console/style.css")->ctype, "text/css; charset=utf-8");
    const char *refused[] = {"/console/../secret.txt", "/console/..",         "/console/.secret.js",
                             "/console/notes.md",      "/console/app.js/",    "/console//app.js",
                             "/console/sub/app.js",    "/consoleapp.js",      "/console/%2e%2e",
                             "/console/nope.js",       "/console/app.js?x=1", "/"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_null(ef_static_find(s, refused[i]));
    assert_true(ef_static_handles("/console"));
    assert_true(ef_static_handles("/console/x"));
    assert_false(ef_static_handles("/consoles"));
    ef_static_free(s);
}

static void test_etags(void **state)
{
    (void)state;
    char err[256];
    ef_static *s = ef_static_load(dir, err, sizeof(err));
    const ef_static_file *f = ef_static_find(s, "/console/app.js");
    assert_int_equal(strlen(f->etag), 18);
    assert_int_equal(f->etag[0], '"');
    assert_true(ef_static_not_modified(f, f->etag));
    char list[80];
    snprintf(list, sizeof(list), "\"abc\", W/%s", f->etag);
    assert_true(ef_static_not_modified(f, list));
    assert_true(ef_static_not_modified(f, "*"));
    assert_false(ef_static_not_modified(f, "\"abc\""));
    assert_false(ef_static_not_modified(f, NULL));
    assert_string_not_equal(f->etag, ef_static_find(s, "/console")->etag);
    ef_static_free(s);
}

static void test_limits_and_errors(void **state)
{
    (void)state;
    char err[256];
    assert_null(ef_static_load("/nonexistent-ef-web", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-ef-web/console"));
    char *big = malloc(EF_STATIC_MAX_FILE + 2);
    memset(big, 'x', EF_STATIC_MAX_FILE + 1);
    big[EF_STATIC_MAX_FILE + 1] = '\0';
    put("console/big.js", big);
    free(big);
    assert_null(ef_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "big.js"));
    char path[160];
    snprintf(path, sizeof(path), "%s/console/big.js", dir);
    remove(path);
    char *d = ef_static_default_dir("/some/where");
    assert_string_equal(d, "/some/where");
    ef_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_etags),
        cmocka_unit_test(test_limits_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
