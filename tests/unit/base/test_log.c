/*
 * test_log.c -- a log line is always one line (control characters and
 * invalid UTF-8 escaped), fits LOG_LINE_MAX (= PIPE_BUF) bytes, and lines
 * from several threads never interleave (src/base/log.c). stderr is
 * captured through a pipe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

/* ---- capture ------------------------------------------------------------ */

typedef struct cap {
    int pipe_fd[2];
    int saved;
} cap;

static void cap_begin(cap *c)
{
    assert_int_equal(pipe(c->pipe_fd), 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(c->pipe_fd[1], STDERR_FILENO) >= 0);
}

/* Restores stderr and reads everything logged since cap_begin into out. */
static size_t cap_end(cap *c, char *out, size_t cap_len)
{
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    close(c->pipe_fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap_len - 1 && (r = read(c->pipe_fd[0], out + n, cap_len - 1 - n)) > 0)
        n += (size_t)r;
    close(c->pipe_fd[0]);
    out[n] = '\0';
    return n;
}

/* The message part of one captured line: after "<time> <LEVEL> <comp> ". */
static const char *msg_of(const char *line)
{
    const char *p = line;
    for (int i = 0; i < 3; i++) {
        p = strchr(p, ' ');
        assert_non_null(p);
        p++;
    }
    return p;
}

static size_t count_char(const char *s, size_t n, char ch)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

/* ---- tests -------------------------------------------------------------- */

static void test_control_characters_escaped(void **state)
{
    (void)state;
    cap c;
    char out[8192];
    cap_begin(&c);
    ef_log_write(EF_LOG_WARN, EF_C_TG, "x/t.c", 1, "user=%s msg=\"%s\"", "a\nb",
                 "fake\r\n2026-01-01T00:00:00.000Z INFO main forged\ttab\x01\x1b[31m\x7f end");
    size_t n = cap_end(&c, out, sizeof(out));
    assert_int_equal(count_char(out, n, '\n'), 1);
    assert_int_equal(out[n - 1], '\n');
    out[n - 1] = '\0';
    assert_string_equal(msg_of(out),
                        "user=a\\nb msg=\"fake\\r\\n2026-01-01T00:00:00.000Z INFO main "
                        "forged\\ttab\\x01\\x1b[31m\\x7f end\"");
    assert_non_null(strstr(out, " WARN tg "));
}

static void test_invalid_utf8_escaped_valid_kept(void **state)
{
    (void)state;
    cap c;
    char out[8192];
    cap_begin(&c);
    ef_log_write(EF_LOG_INFO, EF_C_MAIN, "x/t.c", 1, "%s", "привет \xff\xfe \xc0\xaf end \xd0");
    size_t n = cap_end(&c, out, sizeof(out));
    assert_int_equal(count_char(out, n, '\n'), 1);
    out[n - 1] = '\0';
    assert_string_equal(msg_of(out), "привет \\xff\\xfe \\xc0\\xaf end \\xd0");
}

static void test_long_line_one_line_within_pipe_buf(void **state)
{
    (void)state;
    static char big[20000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = i % 7 == 0 ? '\n' : i % 11 == 0 ? '\x02' : 'a';
    big[sizeof(big) - 1] = '\0';
    cap c;
    char out[16384];
    cap_begin(&c);
    ef_log_write(EF_LOG_ERROR, EF_C_PG, "src/store/pg.c", 77, "%s", big);
    size_t n = cap_end(&c, out, sizeof(out));
    assert_true(n <= 4096);
    assert_int_equal(count_char(out, n, '\n'), 1);
    assert_int_equal(out[n - 1], '\n');
    out[n - 1] = '\0';
    /* the location survives truncation; no escape is cut in half */
    const char *loc = strstr(out, " (pg.c:77)");
    assert_non_null(loc);
    assert_int_equal(strlen(loc), strlen(" (pg.c:77)"));
    const char *end = loc;
    assert_true(end[-1] == 'a' || end[-1] == 'n' || end[-1] == '2');
    if (end[-1] == '2')
        assert_memory_equal(end - 4, "\\x02", 4);
}

enum { THREADS = 4, LINES = 100 };

static void *logger(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        ef_log_write(EF_LOG_INFO, EF_C_PIPE, "x/t.c", 1, "thread=%d line=%d pad=%s", id, i,
                     "....................................");
    return NULL;
}

static void test_threads_never_interleave(void **state)
{
    (void)state;
    static char out[THREADS * LINES * 160];
    cap c;
    cap_begin(&c);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, logger, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    size_t n = cap_end(&c, out, sizeof(out));
    assert_int_equal(count_char(out, n, '\n'), THREADS * LINES);
    int seen[THREADS] = {0};
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int id = -1;
        int ln = -1;
        assert_int_equal(sscanf(msg_of(l), "thread=%d line=%d", &id, &ln), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(ln, seen[id]); /* each thread's lines whole and in order */
        seen[id]++;
        assert_non_null(strstr(l, "pad=....................................")); /* whole */
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(seen[i], LINES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_characters_escaped),
        cmocka_unit_test(test_invalid_utf8_escaped_valid_kept),
        cmocka_unit_test(test_long_line_one_line_within_pipe_buf),
        cmocka_unit_test(test_threads_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
