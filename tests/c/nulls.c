/*
 * nulls.c: every exported function with NULL for each of its pointer arguments (and the other
 * malformed inputs of the argv / cmds shapes: a NULL element, argc 0, struct_size 0). Each must
 * fail with REDPOOL_STATUS_INVALID_ARGUMENT (or be a documented no-op), never crash, never write
 * an output, and never send anything to the server.
 *
 * Every case is checked hard for the status and the untouched outputs. That the message names the
 * offending parameter is checked too, but softly: all such mismatches are listed, then the program
 * fails at the end (exit 1), so one wrong name does not hide the rest of the coverage. With the
 * argument --names-soft they are listed but do not fail the program (tests/c_abi.rs runs both ways,
 * as two tests, so NULL safety and message quality are reported separately).
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

static int misnamed = 0;

/* `call` must fail with INVALID_ARGUMENT, with a message that contains `names`. */
#define NULL_CASE(call, names) null_case_at(__FILE__, __LINE__, #call, (uint32_t)(call), (names))

static void null_case_at(const char *file, int line, const char *text, uint32_t st,
                         const char *names) {
    if (st != REDPOOL_STATUS_INVALID_ARGUMENT)
        check_fail(file, line, "%s returned %u (%s), expected INVALID_ARGUMENT", text, st,
                   redpool_status_str(st));
    const char *msg = last_error();
    if (msg[0] == '\0') check_fail(file, line, "%s failed without a message", text);
    if (strstr(msg, names) == NULL) {
        fprintf(stderr, "%s:%d: %s\n    message \"%s\" does not name `%s`\n", file, line, text, msg,
                names);
        misnamed++;
    }
}

static void event_cb(void *userdata, const redpool_event *event) {
    (void)userdata;
    (void)event;
}

/* The key must not exist: the rejected call did not reach the server. */
static void check_not_sent(const redpool_pool *pool, const char *key) {
    redpool_reply *r = POOL_CMD(pool, "EXISTS", key);
    CHECKF(r->type == REDPOOL_REPLY_INTEGER && r->integer == 0,
           "a rejected call still wrote %s", key);
    redpool_reply_free(r);
}

static void test_config_functions(void) {
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_new(&cfg));

    NULL_CASE(redpool_config_new(NULL), "out");
    NULL_CASE(redpool_config_from_env(NULL), "out");

    redpool_config *untouched = (redpool_config *)&untouched;
    redpool_config *out = untouched;
    NULL_CASE(redpool_config_from_url(NULL, &out), "url");
    CHECK(out == untouched);
    NULL_CASE(redpool_config_from_url("redis://127.0.0.1:6379", NULL), "out");
    NULL_CASE(redpool_config_from_url("redis://127.0.0.1:\xff\xfe", &out), "UTF-8");
    CHECK(out == untouched);

    NULL_CASE(redpool_config_set(NULL, "max_connections", "3"), "config");
    NULL_CASE(redpool_config_set(cfg, NULL, "3"), "key");
    NULL_CASE(redpool_config_set(cfg, "max_connections", NULL), "value");
    NULL_CASE(redpool_config_set(cfg, "max\xff", "3"), "UTF-8");
    NULL_CASE(redpool_config_validate(NULL), "config");
    CHECK_OK(redpool_config_validate(cfg));
    redpool_config_free(NULL);
    redpool_config_free(cfg);
}

static void test_pool_creation(const char *url) {
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_from_url(url, &cfg));
    redpool_pool *untouched = (redpool_pool *)&untouched;
    redpool_pool *out = untouched;

    NULL_CASE(redpool_pool_new(NULL, &out), "config");
    NULL_CASE(redpool_pool_new(cfg, NULL), "out");
    NULL_CASE(redpool_pool_from_url(NULL, &out), "url");
    NULL_CASE(redpool_pool_from_url(url, NULL), "out");
    NULL_CASE(redpool_pool_shared(NULL, &out), "url");
    NULL_CASE(redpool_pool_shared(url, NULL), "out");
    NULL_CASE(redpool_pool_shared_config(NULL, &out), "config");
    NULL_CASE(redpool_pool_shared_config(cfg, NULL), "out");
    NULL_CASE(redpool_pool_shared_default(NULL), "out");
    CHECK(out == untouched);
    redpool_config_free(cfg);
    redpool_pool_free(NULL);
}

/* The malformed argv shapes, for a function taking (argc, argv, argvlen, reply). */
typedef redpool_status (*command_fn)(void *target, size_t argc, const char *const *argv,
                                     const size_t *argvlen, redpool_reply **reply);

static redpool_status pool_command(void *t, size_t argc, const char *const *argv,
                                   const size_t *argvlen, redpool_reply **reply) {
    return redpool_pool_command(t, argc, argv, argvlen, reply);
}
static redpool_status pool_command_timeout(void *t, size_t argc, const char *const *argv,
                                           const size_t *argvlen, redpool_reply **reply) {
    return redpool_pool_command_timeout(t, 1000, argc, argv, argvlen, reply);
}
static redpool_status conn_command(void *t, size_t argc, const char *const *argv,
                                   const size_t *argvlen, redpool_reply **reply) {
    return redpool_conn_command(t, argc, argv, argvlen, reply);
}
static redpool_status conn_command_timeout(void *t, size_t argc, const char *const *argv,
                                           const size_t *argvlen, redpool_reply **reply) {
    return redpool_conn_command_timeout(t, 1000, argc, argv, argvlen, reply);
}

static void check_command_shapes(const char *name, command_fn fn, void *target,
                                 const char *target_name, const redpool_pool *pool) {
    fprintf(stderr, "  %s\n", name);
    redpool_reply *untouched = (redpool_reply *)&untouched;
    redpool_reply *r = untouched;
    const char *set_argv[] = {"SET", "nulls:cmd", "v"};
    const char *hole_argv[] = {"SET", "nulls:cmd", NULL};
    const size_t lens[] = {3, 9, 1};

    NULL_CASE(fn(NULL, 3, set_argv, NULL, &r), target_name);
    NULL_CASE(fn(target, 3, NULL, NULL, &r), "argv");
    NULL_CASE(fn(target, 3, NULL, lens, &r), "argv");
    NULL_CASE(fn(target, 3, set_argv, NULL, NULL), "reply");
    NULL_CASE(fn(target, 3, set_argv, lens, NULL), "reply");
    NULL_CASE(fn(target, 3, hole_argv, NULL, &r), "argv[2]");
    NULL_CASE(fn(target, 3, hole_argv, lens, &r), "argv[2]");
    NULL_CASE(fn(target, 0, set_argv, NULL, &r), "argc");
    NULL_CASE(fn(target, 0, NULL, NULL, &r), "argc");
    CHECK(r == untouched);
    check_not_sent(pool, "nulls:cmd");

    /* argvlen may be NULL (NUL-terminated arguments): the well-formed call works. */
    r = NULL;
    CHECK_OK(fn(target, 3, set_argv, NULL, &r));
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "DEL", "nulls:cmd");
    redpool_reply_free(r);
}

/* The malformed cmds shapes, for a function taking (count, cmds, reply). */
typedef redpool_status (*batch_fn)(void *target, size_t count, const redpool_cmd *cmds,
                                   redpool_reply **reply);

static redpool_status pool_pipeline(void *t, size_t n, const redpool_cmd *c, redpool_reply **r) {
    return redpool_pool_pipeline(t, n, c, r);
}
static redpool_status pool_transaction(void *t, size_t n, const redpool_cmd *c, redpool_reply **r) {
    return redpool_pool_transaction(t, n, c, r);
}
static redpool_status conn_pipeline(void *t, size_t n, const redpool_cmd *c, redpool_reply **r) {
    return redpool_conn_pipeline(t, n, c, r);
}
static redpool_status conn_transaction(void *t, size_t n, const redpool_cmd *c, redpool_reply **r) {
    return redpool_conn_transaction(t, n, c, r);
}

static void check_batch_shapes(const char *name, batch_fn fn, void *target,
                               const char *target_name, const redpool_pool *pool) {
    fprintf(stderr, "  %s\n", name);
    redpool_reply *untouched = (redpool_reply *)&untouched;
    redpool_reply *r = untouched;
    const char *set_argv[] = {"SET", "nulls:batch", "v"};
    const char *hole_argv[] = {"GET", NULL};
    redpool_cmd good[2] = {{3, set_argv, NULL}, {3, set_argv, NULL}};
    redpool_cmd null_argv[2] = {{3, set_argv, NULL}, {2, NULL, NULL}};
    redpool_cmd hole[2] = {{3, set_argv, NULL}, {2, hole_argv, NULL}};
    redpool_cmd no_args[2] = {{3, set_argv, NULL}, {0, set_argv, NULL}};

    NULL_CASE(fn(NULL, 2, good, &r), target_name);
    NULL_CASE(fn(target, 2, NULL, &r), "cmds");
    NULL_CASE(fn(target, 2, good, NULL), "reply");
    NULL_CASE(fn(target, 2, null_argv, &r), "cmds[1]");
    NULL_CASE(fn(target, 2, null_argv, &r), "argv");
    NULL_CASE(fn(target, 2, hole, &r), "cmds[1]");
    NULL_CASE(fn(target, 2, hole, &r), "argv[1]");
    NULL_CASE(fn(target, 2, no_args, &r), "cmds[1]");
    NULL_CASE(fn(target, 2, no_args, &r), "argc");
    CHECK(r == untouched);
    /* The valid first command was not sent either: commands are checked before any I/O. */
    check_not_sent(pool, "nulls:batch");

    /* count 0: an empty batch, cmds may be NULL; the reply is an empty ARRAY. */
    r = NULL;
    CHECK_OK(fn(target, 0, NULL, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 0);
    CHECK(r->element == NULL);
    redpool_reply_free(r);
}

static void test_requests(const redpool_pool *pool) {
    void *p = (void *)(uintptr_t)pool;
    check_command_shapes("redpool_pool_command", pool_command, p, "pool", pool);
    check_command_shapes("redpool_pool_command_timeout", pool_command_timeout, p, "pool", pool);
    check_batch_shapes("redpool_pool_pipeline", pool_pipeline, p, "pool", pool);
    check_batch_shapes("redpool_pool_transaction", pool_transaction, p, "pool", pool);

    redpool_conn *conn = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &conn));
    check_command_shapes("redpool_conn_command", conn_command, conn, "conn", pool);
    check_command_shapes("redpool_conn_command_timeout", conn_command_timeout, conn, "conn", pool);
    check_batch_shapes("redpool_conn_pipeline", conn_pipeline, conn, "conn", pool);
    check_batch_shapes("redpool_conn_transaction", conn_transaction, conn, "conn", pool);

    /* After all those rejected calls the connection is still in a clean state. */
    redpool_reply *r = CONN_CMD(conn, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_conn_release(&conn);
    CHECK(conn == NULL);
}

static void test_pool_functions(const redpool_pool *pool) {
    /* acquire */
    redpool_conn *untouched = (redpool_conn *)&untouched;
    redpool_conn *c = untouched;
    NULL_CASE(redpool_pool_acquire(NULL, 100, &c), "pool");
    CHECK(c == untouched);
    NULL_CASE(redpool_pool_acquire(pool, 100, NULL), "out");
    NULL_CASE(redpool_pool_acquire_with(NULL, 100, NULL, &c), "pool");
    CHECK(c == untouched);
    NULL_CASE(redpool_pool_acquire_with(pool, 100, NULL, NULL), "out");
    redpool_acquire_options options;
    memset(&options, 0, sizeof options); /* struct_size 0 */
    NULL_CASE(redpool_pool_acquire_with(pool, 100, &options, &c), "options->struct_size");
    CHECK(c == untouched);
    /* ... and it did not keep a connection checked out. */
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.in_use, 0);

    /* release / discard: NULL and a pointer to NULL are ignored. */
    redpool_conn_release(NULL);
    redpool_conn_discard(NULL);
    c = NULL;
    redpool_conn_release(&c);
    redpool_conn_discard(&c);

    /* subscribe / unsubscribe */
    uint64_t id = 777;
    NULL_CASE(redpool_pool_subscribe(NULL, event_cb, NULL, &id), "pool");
    NULL_CASE(redpool_pool_subscribe(pool, NULL, NULL, &id), "callback");
    NULL_CASE(redpool_pool_subscribe(pool, event_cb, NULL, NULL), "id");
    CHECK_EQ_INT(id, 777);
    /* userdata may be NULL: it is only passed back. */
    CHECK_OK(redpool_pool_subscribe(pool, event_cb, NULL, &id));
    NULL_CASE(redpool_pool_unsubscribe(NULL, id), "pool");
    CHECK_OK(redpool_pool_unsubscribe(pool, id));
    NULL_CASE(redpool_pool_unsubscribe(pool, id), "id"); /* no longer known */
    NULL_CASE(redpool_pool_unsubscribe(pool, UINT64_MAX), "id");

    /* stats */
    NULL_CASE(redpool_pool_stats(NULL, &st), "pool");
    NULL_CASE(redpool_pool_stats(pool, NULL), "out");
    redpool_stats zero;
    memset(&zero, 0xab, sizeof zero);
    zero.struct_size = 0;
    NULL_CASE(redpool_pool_stats(pool, &zero), "struct_size");
    zero.struct_size = sizeof(size_t) - 1;
    NULL_CASE(redpool_pool_stats(pool, &zero), "struct_size");
    CHECK_EQ_INT(zero.struct_size, sizeof(size_t) - 1);
    CHECK(zero.max_connections == UINT64_C(0xabababababababab));

    /* health */
    redpool_health h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    NULL_CASE(redpool_pool_health(NULL, &h), "pool");
    NULL_CASE(redpool_pool_health(pool, NULL), "out");
    redpool_health hz;
    memset(&hz, 0xab, sizeof hz);
    hz.struct_size = 0;
    NULL_CASE(redpool_pool_health(pool, &hz), "struct_size");
    CHECK(hz.ping_latency_us == (int64_t)UINT64_C(0xabababababababab));

    /* close */
    NULL_CASE(redpool_pool_close(NULL, 0), "pool");

    /* replies */
    redpool_reply_free(NULL);

    /* last error: a NULL buffer with a length is not written to. */
    NULL_CASE(redpool_pool_close(NULL, 0), "pool");
    size_t n = redpool_last_error_message(NULL, 0);
    CHECK(n > 0);
    CHECK_EQ_INT(redpool_last_error_message(NULL, 64), n);
}

int main(int argc, char **argv) {
    bool names_soft = argc > 1 && strcmp(argv[1], "--names-soft") == 0;
    const char *url = url_from_env();
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));

    test_config_functions();
    test_pool_creation(url);
    test_requests(pool);
    test_pool_functions(pool);

    /* After all of it, the pool works and holds no connection. */
    redpool_reply *r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.errors_response, 0);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
    let_background_threads_finish();
    if (misnamed > 0) {
        fprintf(stderr, "nulls: %d message(s) do not name the offending parameter (listed above)\n",
                misnamed);
        if (!names_soft) return 1;
    }
    printf("nulls: ok\n");
    return 0;
}
