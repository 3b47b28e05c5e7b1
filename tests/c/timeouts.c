/*
 * timeouts.c: acquire timeouts (explicit, zero, the pool's default) with the explaining message,
 * hand-off to a waiter, redpool_pool_close() waking every waiting thread with CLOSED, and reply
 * timeouts (socket_timeout, a per-call timeout, a zero timeout).
 *
 * Timing bounds are loose on the slow side (valgrind, loaded CI machines) and strict on the fast
 * side (a wait must not end before its timeout).
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

#include <pthread.h>

static redpool_pool *pool_with(const char *url, const char *query) {
    char buf[256];
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, query), &pool));
    return pool;
}

/* ---- acquire timeouts --------------------------------------------------------------------- */

struct waiter {
    const redpool_pool *pool;
    uint32_t timeout_ms;
    bool use_command; /* wait inside redpool_pool_command instead of redpool_pool_acquire */
    uint32_t status;
    double finished_at;
    char message[512];
    redpool_conn *conn;
};

static void *wait_for_connection(void *arg) {
    struct waiter *w = arg;
    if (w->use_command) {
        args_t ping = args_of("PING", NULL);
        redpool_reply *r = NULL;
        w->status = redpool_pool_command(w->pool, ping.argc, ping.argv, NULL, &r);
        redpool_reply_free(r);
    } else {
        w->status = redpool_pool_acquire(w->pool, w->timeout_ms, &w->conn);
    }
    w->finished_at = now_ms();
    redpool_last_error_message(w->message, sizeof w->message);
    return NULL;
}

static void test_acquire_timeout(const char *url) {
    redpool_pool *pool = pool_with(url, "/?max_connections=1&acquire_timeout=300ms");
    redpool_conn *held = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &held));

    /* An explicit 100 ms. */
    redpool_conn *untouched = (redpool_conn *)&untouched;
    redpool_conn *c = untouched;
    double started = now_ms();
    CHECK_FAILS(redpool_pool_acquire(pool, 100, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    double took = now_ms() - started;
    CHECK(c == untouched);
    CHECKF(took >= 95 && took < 5000, "a 100 ms acquire timeout took %.0f ms", took);
    /* The message explains: which server, the cap, who holds what, what to do. */
    CHECK_LAST_ERROR_HAS("no connection to 127.0.0.1:");
    CHECK_LAST_ERROR_HAS("max_connections=1");
    CHECK_LAST_ERROR_HAS("in use=1");
    CHECK_LAST_ERROR_HAS("acquire_timeout");
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_POOL_EXHAUSTED));

    /* Zero: never waits. */
    started = now_ms();
    CHECK_FAILS(redpool_pool_acquire(pool, 0, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    took = now_ms() - started;
    CHECKF(took < 1000, "a zero acquire timeout took %.0f ms", took);
    CHECK(c == untouched);

    /* REDPOOL_TIMEOUT_DEFAULT: the pool's acquire_timeout (300 ms). */
    started = now_ms();
    CHECK_FAILS(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c),
                REDPOOL_STATUS_POOL_EXHAUSTED);
    took = now_ms() - started;
    CHECKF(took >= 290 && took < 5000, "the default (300 ms) acquire timeout took %.0f ms", took);

    /* One-shot commands wait the same way. */
    args_t ping = args_of("PING", NULL);
    redpool_reply *r = NULL;
    CHECK_FAILS(redpool_pool_command(pool, ping.argc, ping.argv, NULL, &r),
                REDPOOL_STATUS_POOL_EXHAUSTED);
    CHECK(r == NULL);

    redpool_stats st = stats_of(pool);
    CHECK(st.acquire_timeouts >= 4);
    CHECK(st.errors_pool_exhausted >= 1);
    CHECK_EQ_INT(st.in_use, 1);
    CHECK_EQ_INT(st.waiting, 0);

    /* A waiter gets the connection as soon as it is released. */
    struct waiter w;
    memset(&w, 0, sizeof w);
    w.pool = pool;
    w.timeout_ms = 20000;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_for_connection, &w) == 0);
    wait_for_waiters(pool, 1);
    double released_at = now_ms();
    redpool_conn_release(&held);
    CHECK(pthread_join(t, NULL) == 0);
    CHECKF(w.status == REDPOOL_STATUS_OK, "the waiter got %u: %s", w.status, w.message);
    CHECKF(w.finished_at - released_at < 5000, "hand-off took %.0f ms",
           w.finished_at - released_at);
    r = CONN_CMD(w.conn, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_conn_release(&w.conn);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

/* ---- close while threads wait ------------------------------------------------------------- */

enum { WAITERS = 6 };

static void test_close_wakes_waiters(const char *url) {
    redpool_pool *pool = pool_with(url, "/?max_connections=1&acquire_timeout=60s");
    redpool_conn *held = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &held));

    struct waiter w[WAITERS];
    pthread_t t[WAITERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < WAITERS; i++) {
        w[i].pool = pool;
        w[i].timeout_ms = i % 2 ? REDPOOL_TIMEOUT_DEFAULT : 60000;
        w[i].use_command = i >= WAITERS - 2; /* two wait inside redpool_pool_command */
        w[i].status = UINT32_MAX;
        CHECK(pthread_create(&t[i], NULL, wait_for_connection, &w[i]) == 0);
    }
    wait_for_waiters(pool, WAITERS);

    double closed_at = now_ms();
    CHECK_OK(redpool_pool_close(pool, 0));
    double close_took = now_ms() - closed_at;
    CHECKF(close_took < 5000, "close(0) took %.0f ms", close_took);
    for (int i = 0; i < WAITERS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECKF(w[i].status == REDPOOL_STATUS_CLOSED, "waiter %d got %u (%s): %s", i, w[i].status,
               redpool_status_str(w[i].status), w[i].message);
        CHECKF(strstr(w[i].message, "closed") != NULL, "waiter %d: message \"%s\"", i,
               w[i].message);
        double woke = w[i].finished_at - closed_at;
        CHECKF(woke < 5000, "waiter %d woke %.0f ms after close (its timeout was 60 s)", i, woke);
        CHECK(w[i].conn == NULL);
    }

    /* The held connection's socket was shut down; using it fails, releasing it is fine. */
    args_t ping = args_of("PING", NULL);
    redpool_reply *r = NULL;
    uint32_t st = redpool_conn_command(held, ping.argc, ping.argv, NULL, &r);
    CHECKF(st == REDPOOL_STATUS_CONNECTION || st == REDPOOL_STATUS_CLOSED,
           "a command on a connection of a closed pool gave %u (%s)", st, redpool_status_str(st));
    redpool_conn_release(&held);
    redpool_stats s = stats_of(pool);
    CHECK_EQ_INT(s.waiting, 0);
    CHECK_EQ_INT(s.in_use, 0);
    CHECK_EQ_INT(s.open, 0);
    /* New callers fail at once. */
    redpool_conn *c = NULL;
    CHECK_FAILS(redpool_pool_acquire(pool, 60000, &c), REDPOOL_STATUS_CLOSED);
    redpool_pool_free(pool);
}

/* ---- reply timeouts ----------------------------------------------------------------------- */

static void test_reply_timeouts(const char *url) {
    /* socket_timeout 1 s, not less: the PINGs below must be answered in time on a loaded
     * machine under valgrind. */
    redpool_pool *pool = pool_with(url, "/?socket_timeout=1s&retries=0");
    redpool_reply *r = NULL;

    /* The server takes 3 s; socket_timeout is 1 s. */
    args_t sleep3 = args_of("DEBUG", "SLEEP", "3", NULL);
    double started = now_ms();
    CHECK_FAILS(redpool_pool_command(pool, sleep3.argc, sleep3.argv, NULL, &r),
                REDPOOL_STATUS_TIMEOUT);
    double took = now_ms() - started;
    CHECK(r == NULL);
    CHECK_LAST_ERROR_HAS("timed out");
    CHECKF(took >= 990 && took < 2900, "a 1 s socket timeout took %.0f ms", took);
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_TIMEOUT));
    sleep_ms(2500); /* let the server finish sleeping */

    /* A per-call timeout longer than socket_timeout lets it finish. */
    args_t sleep_short = args_of("DEBUG", "SLEEP", "1.5", NULL);
    CHECK_OK(
        redpool_pool_command_timeout(pool, 5000, sleep_short.argc, sleep_short.argv, NULL, &r));
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);

    /* The connection that timed out was closed, not reused; the pool goes on. */
    redpool_stats st = stats_of(pool);
    CHECK(st.closed_broken >= 1);
    CHECK(st.errors_timeout >= 1);
    r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);

    /* On a checked-out connection. */
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_OK(redpool_conn_command_timeout(c, 5000, sleep_short.argc, sleep_short.argv, NULL, &r));
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    /* A zero timeout is refused up front (it would mean "no timeout" to the socket layer). */
    CHECK_FAILS(redpool_conn_command_timeout(c, 0, sleep_short.argc, sleep_short.argv, NULL, &r),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("timeout");
    CHECK_FAILS(redpool_pool_command_timeout(pool, 0, sleep_short.argc, sleep_short.argv, NULL, &r),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("timeout");
    /* ... and the connection is still good. */
    r = CONN_CMD(c, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_conn_release(&c);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

/* A blocking command through redpool_pool_command / redpool_conn_command gets the core's
 * blocking_reply_timeout (its block time plus socket_timeout), as in Python and Node: BLPOP of
 * 1.5 s with a 1 s socket timeout is answered (nil), not timed out (the server answers a timed-out
 * block up to 100 ms late, and a loaded machine adds more: 1 s leaves room). A negative block time is
 * the server's to refuse; over 365 days is refused naming the command. */
static void test_blocking_reply_timeout(const char *url) {
    redpool_pool *pool = pool_with(url, "/?socket_timeout=1s&retries=0");
    redpool_reply *r = NULL;
    args_t blpop = args_of("BLPOP", "c:blocking:empty", "1.5", NULL);
    CHECK_OK(redpool_pool_command(pool, blpop.argc, blpop.argv, NULL, &r));
    CHECK(r->type == REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
    args_t negative = args_of("BLPOP", "c:blocking:empty", "-1", NULL);
    CHECK_OK(redpool_pool_command(pool, negative.argc, negative.argv, NULL, &r));
    CHECK_ERROR_REPLY(r, "ERR");
    redpool_reply_free(r);
    args_t huge = args_of("BLPOP", "c:blocking:empty", "1e20", NULL);
    CHECK_FAILS(redpool_pool_command(pool, huge.argc, huge.argv, NULL, &r),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("BLPOP timeout");
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_OK(redpool_conn_command(c, blpop.argc, blpop.argv, NULL, &r));
    CHECK(r->type == REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
    redpool_conn_release(&c);
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

int main(void) {
    const char *url = url_from_env();
    test_acquire_timeout(url);
    test_close_wakes_waiters(url);
    test_reply_timeouts(url);
    test_blocking_reply_timeout(url);
    let_background_threads_finish();
    return finish("timeouts");
}
