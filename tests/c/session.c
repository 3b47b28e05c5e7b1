/*
 * session.c: checked-out connections. acquire / release / discard (and the redpool_conn ** shape
 * that makes a second release a no-op), WATCH + MULTI/EXEC with and without a concurrent write,
 * EXECABORT, session state that must not leak to the next user (open MULTI, WATCH, SELECT),
 * pipelines on a pool and on a connection, blocking BLPOP with a per-call timeout, a connection
 * outliving its pool handle, and close() while a connection is checked out.
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

#include <pthread.h>

/* The server-side id of a connection (CLIENT ID). */
static long long client_id(redpool_conn *c) {
    redpool_reply *r = CONN_CMD(c, "CLIENT", "ID");
    CHECK_TYPE(r, REDPOOL_REPLY_INTEGER);
    long long id = r->integer;
    redpool_reply_free(r);
    return id;
}

static void set_key(const redpool_pool *pool, const char *key, const char *value) {
    redpool_reply *r = POOL_CMD(pool, "SET", key, value);
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
}

static void check_key(const redpool_pool *pool, const char *key, const char *value) {
    redpool_reply *r = POOL_CMD(pool, "GET", key);
    if (value == NULL)
        CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    else
        CHECK_STRING(r, value);
    redpool_reply_free(r);
}

static void test_acquire_release_discard(const redpool_pool *pool) {
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK(c != NULL);
    redpool_stats st = stats_of(pool);
    CHECK_EQ_INT(st.in_use, 1);
    long long first = client_id(c);
    redpool_reply *r = CONN_CMD(c, "SET", "session:a", "1");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);

    /* Release sets the pointer to NULL, so releasing or discarding through it again is a no-op
     * (a copy of the pointer made before would still dangle: that is the caller's side). */
    redpool_conn_release(&c);
    CHECK(c == NULL);
    redpool_conn_release(&c);
    redpool_conn_discard(&c);
    st = stats_of(pool);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.idle, 1);

    /* A clean connection goes back and is reused. */
    CHECK_OK(redpool_pool_acquire(pool, 0, &c));
    CHECK_EQ_INT(client_id(c), first);
    uint64_t discarded = stats_of(pool).closed_discarded;

    /* Discard closes it instead. */
    redpool_conn_discard(&c);
    CHECK(c == NULL);
    redpool_conn_discard(&c);
    redpool_conn_release(&c);
    st = stats_of(pool);
    CHECK_EQ_INT(st.closed_discarded, discarded + 1);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.idle, 0);
    CHECK_OK(redpool_pool_acquire(pool, 0, &c));
    CHECK(client_id(c) != first);
    redpool_conn_release(&c);
}

/* WATCH, then a write from elsewhere: EXEC does not run (NIL, status OK). */
static void test_watch_conflict(const redpool_pool *pool) {
    set_key(pool, "session:balance", "100");
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_reply *r = CONN_CMD(c, "WATCH", "session:balance");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    r = CONN_CMD(c, "GET", "session:balance");
    CHECK_STRING(r, "100");
    redpool_reply_free(r);

    /* A concurrent write through the pool (another connection). */
    set_key(pool, "session:balance", "50");

    args_t a = args_of("SET", "session:balance", "90", NULL);
    args_t b = args_of("INCR", "session:tx-count", NULL);
    redpool_cmd tx[2] = {cmd_of(&a), cmd_of(&b)};
    r = NULL;
    CHECK_OK(redpool_conn_transaction(c, 2, tx, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
    check_key(pool, "session:balance", "50");
    check_key(pool, "session:tx-count", NULL);

    /* WATCH without interference: the transaction runs; its replies in an ARRAY. */
    r = CONN_CMD(c, "WATCH", "session:balance");
    redpool_reply_free(r);
    r = CONN_CMD(c, "GET", "session:balance");
    CHECK_STRING(r, "50");
    redpool_reply_free(r);
    CHECK_OK(redpool_conn_transaction(c, 2, tx, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 2);
    CHECK_STATUS_REPLY(r->element[0], "OK");
    CHECK_INTEGER(r->element[1], 1);
    redpool_reply_free(r);
    check_key(pool, "session:balance", "90");

    /* EXECABORT: a command rejected while queueing; nothing runs; the connection stays usable. */
    args_t bad = args_of("NOSUCHCOMMAND", "x", NULL);
    redpool_cmd aborted[2] = {cmd_of(&b), cmd_of(&bad)};
    CHECK_OK(redpool_conn_transaction(c, 2, aborted, &r));
    CHECK_ERROR_REPLY(r, "EXECABORT");
    redpool_reply_free(r);
    check_key(pool, "session:tx-count", "1");
    r = CONN_CMD(c, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);

    /* MULTI / EXEC by hand, command by command. */
    r = CONN_CMD(c, "MULTI");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    r = CONN_CMD(c, "INCR", "session:tx-count");
    CHECK_STATUS_REPLY(r, "QUEUED");
    redpool_reply_free(r);
    r = CONN_CMD(c, "EXEC");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 1);
    CHECK_INTEGER(r->element[0], 2);
    redpool_reply_free(r);
    redpool_conn_release(&c);

    /* The same on the pool (no WATCH possible there): one round trip, an ARRAY. */
    CHECK_OK(redpool_pool_transaction(pool, 2, tx, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_INTEGER(r->element[1], 3);
    redpool_reply_free(r);
}

/* State a caller leaves behind must not reach the next user of the connection. */
static void test_session_state_does_not_leak(const redpool_pool *pool) {
    set_key(pool, "session:left", "before");

    /* An open MULTI is discarded on release: the queued command never runs. */
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    long long id = client_id(c);
    redpool_reply *r = CONN_CMD(c, "MULTI");
    redpool_reply_free(r);
    r = CONN_CMD(c, "SET", "session:left", "from-open-multi");
    CHECK_STATUS_REPLY(r, "QUEUED");
    redpool_reply_free(r);
    redpool_conn_release(&c);
    check_key(pool, "session:left", "before");
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_EQ_INT(client_id(c), id); /* reused, and not inside a MULTI (CLIENT ID answered) */
    r = CONN_CMD(c, "GET", "session:left");
    CHECK_STRING(r, "before");
    redpool_reply_free(r);

    /* An open WATCH is undone on release: the next user's EXEC is not aborted by it. */
    r = CONN_CMD(c, "WATCH", "session:left");
    redpool_reply_free(r);
    redpool_conn_release(&c);
    set_key(pool, "session:left", "changed");
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_EQ_INT(client_id(c), id);
    args_t a = args_of("SET", "session:left", "after", NULL);
    redpool_cmd tx[1] = {cmd_of(&a)};
    CHECK_OK(redpool_conn_transaction(c, 1, tx, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    redpool_reply_free(r);
    check_key(pool, "session:left", "after");

    /* SELECT cannot be undone: the connection is closed on release, never reused on db 1. */
    r = CONN_CMD(c, "SELECT", "1");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    uint64_t discarded = stats_of(pool).closed_discarded;
    redpool_conn_release(&c);
    CHECK_EQ_INT(stats_of(pool).closed_discarded, discarded + 1);
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK(client_id(c) != id);
    r = CONN_CMD(c, "GET", "session:left");
    CHECK_STRING(r, "after"); /* db 0 */
    redpool_reply_free(r);
    redpool_conn_release(&c);
}

static void test_pipelines(const redpool_pool *pool) {
    enum { N = 100 };
    /* On the pool: 100 INCRs in one pipeline, replies in order. */
    args_t incr = args_of("INCR", "session:counter", NULL);
    redpool_cmd cmds[N];
    for (int i = 0; i < N; i++) cmds[i] = cmd_of(&incr);
    redpool_reply *r = NULL;
    CHECK_OK(redpool_pool_pipeline(pool, N, cmds, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, N);
    for (int i = 0; i < N; i++) CHECK_INTEGER(r->element[i], i + 1);
    redpool_reply_free(r);

    /* On a connection, binary safe (argvlen), mixing types. */
    const char key[] = {'s', 'e', 's', 's', '\0', 'k'};
    const char val[] = {'v', '\0', 'w'};
    const char *set_argv[] = {"SET", key, val};
    const size_t set_len[] = {3, sizeof key, sizeof val};
    const char *get_argv[] = {"GET", key};
    const size_t get_len[] = {3, sizeof key};
    const char *strlen_argv[] = {"STRLEN", key};
    const size_t strlen_len[] = {6, sizeof key};
    args_t missing = args_of("GET", "session:missing", NULL);
    redpool_cmd mixed[4] = {{3, set_argv, set_len},
                            {2, get_argv, get_len},
                            {2, strlen_argv, strlen_len},
                            cmd_of(&missing)};
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_OK(redpool_conn_pipeline(c, 4, mixed, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 4);
    CHECK_STATUS_REPLY(r->element[0], "OK");
    CHECK_TYPE(r->element[1], REDPOOL_REPLY_STRING);
    CHECK_EQ_INT(r->element[1]->len, sizeof val);
    CHECK(memcmp(r->element[1]->str, val, sizeof val) == 0);
    CHECK_INTEGER(r->element[2], 3);
    CHECK_TYPE(r->element[3], REDPOOL_REPLY_NIL);
    redpool_reply_free(r);

    /* A pipeline may open a transaction on a connection; its commands are queued. */
    args_t multi = args_of("MULTI", NULL);
    args_t exec = args_of("EXEC", NULL);
    redpool_cmd in_tx[4] = {cmd_of(&multi), cmd_of(&incr), cmd_of(&incr), cmd_of(&exec)};
    CHECK_OK(redpool_conn_pipeline(c, 4, in_tx, &r));
    CHECK_EQ_INT(r->elements, 4);
    CHECK_STATUS_REPLY(r->element[0], "OK");
    CHECK_STATUS_REPLY(r->element[1], "QUEUED");
    CHECK_STATUS_REPLY(r->element[2], "QUEUED");
    CHECK_TYPE(r->element[3], REDPOOL_REPLY_ARRAY);
    CHECK_INTEGER(r->element[3]->element[1], N + 2);
    redpool_reply_free(r);
    redpool_conn_release(&c);
}

struct pusher {
    const redpool_pool *pool;
    long delay_ms;
};

static void *push_later(void *arg) {
    struct pusher *p = arg;
    sleep_ms(p->delay_ms);
    redpool_reply *r = POOL_CMD(p->pool, "RPUSH", "session:queue", "job-1");
    CHECK_TYPE(r, REDPOOL_REPLY_INTEGER);
    redpool_reply_free(r);
    return NULL;
}

static void test_blocking(const redpool_pool *pool) {
    /* The pool's socket_timeout is 500 ms; a per-call timeout lets BLPOP block longer. */
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    pthread_t t;
    struct pusher p = {pool, 800};
    CHECK(pthread_create(&t, NULL, push_later, &p) == 0);
    args_t blpop = args_of("BLPOP", "session:queue", "10", NULL);
    redpool_reply *r = NULL;
    double started = now_ms();
    CHECK_OK(redpool_conn_command_timeout(c, 10000, blpop.argc, blpop.argv, NULL, &r));
    double took = now_ms() - started;
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 2);
    CHECK_STRING(r->element[0], "session:queue");
    CHECK_STRING(r->element[1], "job-1");
    redpool_reply_free(r);
    CHECKF(took >= 600, "BLPOP returned after %.0f ms, before the push", took);

    /* The server's own timeout (1 s) ends it with NIL, not a client timeout. */
    args_t blpop1 = args_of("BLPOP", "session:queue", "1", NULL);
    CHECK_OK(redpool_conn_command_timeout(c, 5000, blpop1.argc, blpop1.argv, NULL, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
    /* The normal timeout is back for ordinary commands. */
    r = CONN_CMD(c, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);

    /* The client's timeout is shorter than the server's: TIMEOUT; the connection is broken and is
     * closed, not reused, when released. */
    uint64_t broken = stats_of(pool).closed_broken;
    args_t blpop5 = args_of("BLPOP", "session:queue", "5", NULL);
    r = NULL;
    started = now_ms();
    CHECK_FAILS(redpool_conn_command_timeout(c, 300, blpop5.argc, blpop5.argv, NULL, &r),
                REDPOOL_STATUS_TIMEOUT);
    took = now_ms() - started;
    CHECK(r == NULL);
    CHECKF(took >= 250 && took < 3000, "the 300 ms timeout took %.0f ms", took);
    redpool_conn_release(&c);
    CHECK_EQ_INT(stats_of(pool).closed_broken, broken + 1);

    /* On the pool: the same with a push from another thread. */
    p.delay_ms = 700;
    CHECK(pthread_create(&t, NULL, push_later, &p) == 0);
    CHECK_OK(redpool_pool_command_timeout(pool, 10000, blpop.argc, blpop.argv, NULL, &r));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_STRING(r->element[1], "job-1");
    redpool_reply_free(r);
    started = now_ms();
    CHECK_FAILS(redpool_pool_command_timeout(pool, 300, blpop5.argc, blpop5.argv, NULL, &r),
                REDPOOL_STATUS_TIMEOUT);
    took = now_ms() - started;
    /* BLPOP is not idempotent and was sent: not retried. */
    CHECKF(took < 3000, "the 300 ms timeout on the pool took %.0f ms", took);
    /* A blocking command through the plain call waits its own block time (1 s, past the 500 ms
     * socket_timeout) plus socket_timeout, as in Python and Node: an empty queue gives NIL. */
    args_t blpop_1s = args_of("BLPOP", "session:queue", "1", NULL);
    CHECK_OK(redpool_pool_command(pool, blpop_1s.argc, blpop_1s.argv, NULL, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
}

/* A connection may move between threads (used by one at a time): checked out here, used and
 * released on another thread. */
struct mover {
    redpool_conn *conn;
    long long id;
};

static void *use_and_release(void *arg) {
    struct mover *m = arg;
    redpool_reply *r = CONN_CMD(m->conn, "CLIENT", "ID");
    CHECK_INTEGER(r, m->id);
    redpool_reply_free(r);
    redpool_conn_release(&m->conn);
    CHECK(m->conn == NULL);
    return NULL;
}

static void test_conn_moves_between_threads(const redpool_pool *pool) {
    struct mover m = {NULL, 0};
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &m.conn));
    m.id = client_id(m.conn);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, use_and_release, &m) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(m.conn == NULL);
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.in_use, 0);
}

/* A checked-out connection keeps its pool alive after the last handle is freed. */
static void test_conn_outlives_handle(const char *url) {
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_pool_free(pool);
    redpool_reply *r = CONN_CMD(c, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_conn_release(&c); /* the last reference: the pool goes now */
}

/* close() while a connection is checked out: after the grace period its socket is shut down, its
 * next command fails (not a crash), and releasing it is still fine. */
static void test_close_with_conn_out(const char *url) {
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    double started = now_ms();
    CHECK_OK(redpool_pool_close(pool, 200));
    double took = now_ms() - started;
    CHECKF(took >= 150 && took < 5000, "close with 200 ms grace took %.0f ms", took);
    args_t ping = args_of("PING", NULL);
    redpool_reply *r = NULL;
    uint32_t st = redpool_conn_command(c, ping.argc, ping.argv, NULL, &r);
    CHECKF(st == REDPOOL_STATUS_CONNECTION || st == REDPOOL_STATUS_CLOSED,
           "a command on a shut-down connection gave %u (%s)", st, redpool_status_str(st));
    CHECK(r == NULL);
    redpool_conn_release(&c);
    redpool_stats s = stats_of(pool);
    CHECK_EQ_INT(s.open, 0);
    CHECK_EQ_INT(s.in_use, 0);
    redpool_pool_free(pool);
}

int main(void) {
    const char *url = url_from_env();
    char buf[256];
    redpool_pool *pool = NULL;
    const char *query = "/?max_connections=3&socket_timeout=500ms&retries=2";
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, query), &pool));
    redpool_reply *r = POOL_CMD(pool, "FLUSHALL");
    redpool_reply_free(r);

    test_acquire_release_discard(pool);
    test_watch_conflict(pool);
    test_session_state_does_not_leak(pool);
    test_pipelines(pool);
    test_blocking(pool);
    test_conn_moves_between_threads(pool);
    test_conn_outlives_handle(url);
    test_close_with_conn_out(url);

    redpool_stats st = stats_of(pool);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK(st.open <= 3);
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
    let_background_threads_finish();
    return finish("session");
}
