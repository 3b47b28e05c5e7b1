/*
 * check.h: tiny test helpers shared by the C behaviour tests in tests/c/ (C11 + pthreads only).
 *
 * Each test program is compiled and run by tests/c_abi.rs against a fresh redis-server whose URL
 * is in the environment (REDIS_URL, REDIS_PORT), under valgrind when it is installed. A program
 * passes by exiting 0; every failed CHECK prints file:line, the expression, the status and the
 * thread's last redpool error message, then exits 1. EXPECTF is the soft variant used for known
 * bugs: it prints the same way, the program goes on, and finish() makes it exit 1 at the end.
 *
 * Everything here is `static inline` (no unused-function warnings) and each program is a single
 * translation unit that includes it once.
 */
#ifndef REDPOOL_TEST_CHECK_H
#define REDPOOL_TEST_CHECK_H

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redpool.h"

/* ---- failure reporting ------------------------------------------------------------------- */

_Noreturn static inline void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

_Noreturn static inline void check_fail(const char *file, int line, const char *fmt, ...) {
    char last[1024];
    redpool_last_error_message(last, sizeof last);
    fprintf(stderr, "%s:%d: CHECK FAILED: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n    last error on this thread: \"%s\"\n", last);
    fflush(stderr);
    exit(1);
}

/* URL options for a pool whose test asserts a health status through the plumbing, not a latency:
 * the default thresholds (degraded at a 50 ms PING, unhealthy at 100 ms) are crossed by one round
 * trip on a loaded machine or under valgrind. */
#define PLUMBING_ONLY "health_degraded_latency=10s&health_unhealthy_latency=20s"

/* A condition that must hold. */
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) check_fail(__FILE__, __LINE__, "%s", #cond);                            \
    } while (0)

/* A condition that must hold, with a printf-style explanation. */
#define CHECKF(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__);                            \
    } while (0)

/* A call that must return `expected` (a redpool_status). */
#define CHECK_STATUS(call, expected)                                                         \
    do {                                                                                     \
        uint32_t check_got_ = (uint32_t)(call);                                              \
        uint32_t check_want_ = (uint32_t)(expected);                                         \
        if (check_got_ != check_want_)                                                       \
            check_fail(__FILE__, __LINE__, "%s returned %u (%s), expected %u (%s)", #call,  \
                       check_got_, redpool_status_str(check_got_), check_want_,              \
                       redpool_status_str(check_want_));                                     \
    } while (0)

/* A call that must succeed. */
#define CHECK_OK(call) CHECK_STATUS(call, REDPOOL_STATUS_OK)

/* Two C strings that must be equal. */
#define CHECK_STREQ(a, b)                                                                    \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0)         \
            check_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,            \
                       check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");      \
    } while (0)

/* Two integers that must be equal (printed on failure). */
#define CHECK_EQ_INT(a, b)                                                                   \
    do {                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                      \
        if (check_a_ != check_b_)                                                            \
            check_fail(__FILE__, __LINE__, "%s == %s: %lld vs %lld", #a, #b, check_a_,       \
                       check_b_);                                                            \
    } while (0)

/*
 * Soft checks, for known bugs: EXPECTF records a failure (printed at once, with the last error)
 * and lets the program go on, so one bug does not hide the rest of the coverage; finish() then
 * makes the program fail. Thread-safe enough for counting (atomic).
 */
static inline _Atomic int *expect_failures(void) {
    static _Atomic int failures;
    return &failures;
}

#define EXPECTF(cond, ...)                                                                   \
    do {                                                                                     \
        if (!(cond)) expect_fail_at(__FILE__, __LINE__, __VA_ARGS__);                        \
    } while (0)

static inline void expect_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void expect_fail_at(const char *file, int line, const char *fmt, ...) {
    char last[1024];
    redpool_last_error_message(last, sizeof last);
    fprintf(stderr, "%s:%d: EXPECTATION FAILED: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n    last error on this thread: \"%s\"\n", last);
    fflush(stderr);
    (*expect_failures())++;
}

/* The end of main: 0 ("name: ok") unless an EXPECTF failed. */
static inline int finish(const char *name) {
    int failures = *expect_failures();
    if (failures > 0) {
        fprintf(stderr,
                "%s: %d expectation(s) failed (listed above); every other check passed\n",
                name, failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

/* A copy of this thread's last error message (in a per-thread buffer: use it at once). */
static inline const char *last_error(void) {
    static _Thread_local char buf[2048];
    redpool_last_error_message(buf, sizeof buf);
    return buf;
}

/* The last error message must contain `needle`. */
#define CHECK_LAST_ERROR_HAS(needle)                                                         \
    do {                                                                                     \
        const char *check_msg_ = last_error();                                               \
        if (strstr(check_msg_, (needle)) == NULL)                                            \
            check_fail(__FILE__, __LINE__, "last error \"%s\" does not contain \"%s\"",      \
                       check_msg_, (needle));                                                \
    } while (0)

/* ---- environment ------------------------------------------------------------------------- */

/* REDIS_URL (redis://127.0.0.1:PORT), set by tests/c_abi.rs. */
static inline const char *url_from_env(void) {
    const char *url = getenv("REDIS_URL");
    if (url == NULL || strncmp(url, "redis://127.0.0.1:", 18) != 0) {
        fprintf(stderr, "REDIS_URL must be set to redis://127.0.0.1:PORT (got %s)\n",
                url ? url : "nothing");
        exit(2);
    }
    return url;
}

/* An environment variable that must be set. */
static inline const char *env_required(const char *name) {
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0') {
        fprintf(stderr, "environment variable %s must be set\n", name);
        exit(2);
    }
    return value;
}

/* `base` with `suffix` appended (e.g. "?max_connections=4"), in `buf`. */
static inline const char *url_with(char *buf, size_t len, const char *base, const char *suffix) {
    int n = snprintf(buf, len, "%s%s", base, suffix);
    CHECK(n > 0 && (size_t)n < len);
    return buf;
}

/* ---- pools ------------------------------------------------------------------------------- */

/* A pool for the URL `fmt` formats (printf-style); it must be created. */
static inline redpool_pool *open_pool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline redpool_pool *open_pool(const char *fmt, ...) {
    char url[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(url, sizeof url, fmt, ap);
    va_end(ap);
    CHECK(n > 0 && (size_t)n < sizeof url);
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    return pool;
}

/* Closes `pool` (1 s grace) and frees the handle. */
static inline void close_pool(redpool_pool *pool) {
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

/* ---- time -------------------------------------------------------------------------------- */

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- pool state --------------------------------------------------------------------------- */

/* The pool's stats now. */
static inline redpool_stats stats_of(const redpool_pool *pool) {
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    return st;
}

/* Waits (at most 20 s) until `waiting` callers are queued in the pool. */
static inline void wait_for_waiters(const redpool_pool *pool, uint64_t waiting) {
    double deadline = now_ms() + 20000;
    while (stats_of(pool).waiting < waiting) {
        CHECKF(now_ms() < deadline, "only %" PRIu64 " of %" PRIu64 " callers queued after 20 s",
               stats_of(pool).waiting, waiting);
        sleep_ms(5);
    }
}

/*
 * Each pool has a background maintenance thread that ends once its pool is closed (at once) or
 * its last handle is freed (within ~1 s). Rust does not join it at exit, so a program that exits
 * while it is still winding down leaves its thread-local storage "possibly lost" in valgrind's
 * eyes. Every program closes and frees its pools, then calls this before returning.
 */
static inline void let_background_threads_finish(void) {
    sleep_ms(1200);
}

/* ---- building commands ------------------------------------------------------------------- */

/* An argv of NUL-terminated strings, with argc counted (at most 16 arguments). */
typedef struct {
    size_t argc;
    const char *argv[16];
} args_t;

/* args_of("SET", "k", "v", NULL): the list ends with NULL. */
static inline args_t args_of(const char *first, ...) {
    args_t a;
    memset(&a, 0, sizeof a);
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
        CHECK(a.argc < 16);
        a.argv[a.argc++] = s;
    }
    va_end(ap);
    return a;
}

/* A redpool_cmd over an args_t (the args_t must outlive the call that uses the command). */
static inline redpool_cmd cmd_of(const args_t *a) {
    redpool_cmd c;
    c.argc = a->argc;
    c.argv = a->argv;
    c.argvlen = NULL;
    return c;
}

/* Runs a command of NUL-terminated strings on the pool (must succeed); the caller frees it. */
#define POOL_CMD(pool, ...) pool_cmd_at(__FILE__, __LINE__, (pool), args_of(__VA_ARGS__, NULL))

static inline redpool_reply *pool_cmd_at(const char *file, int line, const redpool_pool *pool,
                                         args_t a) {
    redpool_reply *r = NULL;
    uint32_t st = (uint32_t)redpool_pool_command(pool, a.argc, a.argv, NULL, &r);
    if (st != REDPOOL_STATUS_OK)
        check_fail(file, line, "redpool_pool_command(%s ...) returned %u (%s)", a.argv[0], st,
                   redpool_status_str(st));
    if (r == NULL) check_fail(file, line, "redpool_pool_command(%s ...) gave no reply", a.argv[0]);
    return r;
}

/* Same on a checked-out connection. */
#define CONN_CMD(conn, ...) conn_cmd_at(__FILE__, __LINE__, (conn), args_of(__VA_ARGS__, NULL))

static inline redpool_reply *conn_cmd_at(const char *file, int line, redpool_conn *conn, args_t a) {
    redpool_reply *r = NULL;
    uint32_t st = (uint32_t)redpool_conn_command(conn, a.argc, a.argv, NULL, &r);
    if (st != REDPOOL_STATUS_OK)
        check_fail(file, line, "redpool_conn_command(%s ...) returned %u (%s)", a.argv[0], st,
                   redpool_status_str(st));
    if (r == NULL) check_fail(file, line, "redpool_conn_command(%s ...) gave no reply", a.argv[0]);
    return r;
}

/* ---- checking replies -------------------------------------------------------------------- */

static inline const char *reply_type_name(int type) {
    switch (type) {
    case REDPOOL_REPLY_STRING: return "STRING";
    case REDPOOL_REPLY_ARRAY: return "ARRAY";
    case REDPOOL_REPLY_INTEGER: return "INTEGER";
    case REDPOOL_REPLY_NIL: return "NIL";
    case REDPOOL_REPLY_STATUS: return "STATUS";
    case REDPOOL_REPLY_ERROR: return "ERROR";
    case REDPOOL_REPLY_DOUBLE: return "DOUBLE";
    case REDPOOL_REPLY_BOOL: return "BOOL";
    case REDPOOL_REPLY_MAP: return "MAP";
    case REDPOOL_REPLY_SET: return "SET";
    case REDPOOL_REPLY_PUSH: return "PUSH";
    case REDPOOL_REPLY_BIGNUM: return "BIGNUM";
    case REDPOOL_REPLY_VERB: return "VERB";
    default: return "?";
    }
}

/* The reply must have this type (printing its text, if any, on failure). */
#define CHECK_TYPE(reply, want)                                                              \
    do {                                                                                     \
        const redpool_reply *check_r_ = (reply);                                             \
        if (check_r_ == NULL) check_fail(__FILE__, __LINE__, "%s is NULL", #reply);          \
        if ((int)check_r_->type != (int)(want))                                              \
            check_fail(__FILE__, __LINE__, "%s has type %s, expected %s (str \"%s\")",      \
                       #reply, reply_type_name((int)check_r_->type),                         \
                       reply_type_name((int)(want)), check_r_->str ? check_r_->str : "");    \
    } while (0)

/* A textual reply (STRING / STATUS / ERROR) with exactly this text, NUL-terminated. */
#define CHECK_TEXT(reply, want_type, text)                                                   \
    do {                                                                                     \
        const redpool_reply *check_t_ = (reply);                                             \
        const char *check_w_ = (text);                                                       \
        CHECK_TYPE(check_t_, want_type);                                                     \
        CHECKF(check_t_->str != NULL, "%s->str is NULL", #reply);                            \
        CHECKF(check_t_->len == strlen(check_w_) &&                                          \
                   memcmp(check_t_->str, check_w_, check_t_->len) == 0 &&                    \
                   check_t_->str[check_t_->len] == '\0',                                     \
               "%s is \"%.*s\" (len %zu), expected \"%s\"", #reply, (int)check_t_->len,      \
               check_t_->str, check_t_->len, check_w_);                                      \
    } while (0)

#define CHECK_STRING(reply, text) CHECK_TEXT(reply, REDPOOL_REPLY_STRING, text)
#define CHECK_STATUS_REPLY(reply, text) CHECK_TEXT(reply, REDPOOL_REPLY_STATUS, text)

/* An INTEGER reply with this value. */
#define CHECK_INTEGER(reply, value)                                                          \
    do {                                                                                     \
        const redpool_reply *check_i_ = (reply);                                             \
        CHECK_TYPE(check_i_, REDPOOL_REPLY_INTEGER);                                         \
        CHECK_EQ_INT(check_i_->integer, (value));                                            \
    } while (0)

/* An ERROR reply whose text starts with `prefix`. */
#define CHECK_ERROR_REPLY(reply, prefix)                                                     \
    do {                                                                                     \
        const redpool_reply *check_e_ = (reply);                                             \
        CHECK_TYPE(check_e_, REDPOOL_REPLY_ERROR);                                           \
        CHECKF(check_e_->str != NULL &&                                                      \
                   strncmp(check_e_->str, (prefix), strlen(prefix)) == 0,                    \
               "%s is \"%s\", expected it to start with \"%s\"", #reply,                     \
               check_e_->str ? check_e_->str : "(null)", (prefix));                          \
    } while (0)

/* Runs `call` and checks that it fails with `expected` and leaves a non-empty message. */
#define CHECK_FAILS(call, expected)                                                          \
    do {                                                                                     \
        CHECK_STATUS(call, expected);                                                        \
        CHECKF(redpool_last_error_message(NULL, 0) > 0, "%s failed without a message",       \
               #call);                                                                       \
    } while (0)

#endif /* REDPOOL_TEST_CHECK_H */
