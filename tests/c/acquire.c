/*
 * acquire.c: redpool_pool_acquire_with and its options. With max_connections=1 and the one
 * connection held: a try (timeout 0) fails at once with POOL_EXHAUSTED, whatever the priority; a
 * HIGH waiter that queued after a NORMAL one is served first (the order is made deterministic by
 * waiting until the pool counts both waiters before releasing). A priority that is not a
 * redpool_priority, or a struct_size too small, is INVALID_ARGUMENT naming the field; NULL options
 * and a struct_size from an older (shorter) header are the defaults.
 *
 * No check depends on how fast anything is: the try's bound (30 s against a 60 s
 * acquire_timeout) only tells "did not wait" from "waited".
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

static redpool_acquire_options options_with(uint32_t priority) {
    redpool_acquire_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.priority = priority;
    return o;
}

/* Runs PING on `conn`, which must answer PONG. */
static void check_ping(redpool_conn *conn) {
    redpool_reply *r = CONN_CMD(conn, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
}

/* ---- try-acquire ------------------------------------------------------------------------ */

static void test_try_acquire(const char *url) {
    redpool_pool *pool = open_pool("%s/?max_connections=1&acquire_timeout=60s", url);
    redpool_conn *held = NULL;
    /* NULL options: the defaults. */
    CHECK_OK(redpool_pool_acquire_with(pool, REDPOOL_TIMEOUT_DEFAULT, NULL, &held));
    check_ping(held);

    redpool_conn *untouched = (redpool_conn *)&untouched;
    redpool_conn *c = untouched;
    uint64_t timeouts_before = stats_of(pool).acquire_timeouts;
    double started = now_ms();
    CHECK_FAILS(redpool_pool_acquire_with(pool, 0, NULL, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    CHECK_LAST_ERROR_HAS("max_connections=1");
    redpool_acquire_options high = options_with(REDPOOL_PRIORITY_HIGH);
    CHECK_FAILS(redpool_pool_acquire_with(pool, 0, &high, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    /* The old entry point's try is the same call. */
    CHECK_FAILS(redpool_pool_acquire(pool, 0, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    double took = now_ms() - started;
    CHECKF(took < 30000, "three tries took %.0f ms: they waited for the 60 s acquire_timeout",
           took);
    CHECK(c == untouched);
    redpool_stats st = stats_of(pool);
    CHECK_EQ_INT(st.acquire_timeouts - timeouts_before, 3);
    CHECK_EQ_INT(st.waiting, 0);
    CHECK_EQ_INT(st.in_use, 1);

    /* Once the connection is back, a try gets it. */
    redpool_conn_release(&held);
    CHECK(held == NULL);
    CHECK_OK(redpool_pool_acquire_with(pool, 0, &high, &c));
    check_ping(c);
    redpool_conn_release(&c);
    CHECK_EQ_INT(stats_of(pool).in_use, 0);
    close_pool(pool);
}

/* ---- priority ----------------------------------------------------------------------------- */

/* How many waiters got the connection so far: each takes the next number when served. */
static atomic_int served_so_far;

struct waiter {
    const redpool_pool *pool;
    uint32_t priority;
    uint32_t status;
    int served; /* 1 for the first waiter served, 2 for the second */
    char message[512];
};

static void *wait_for_connection(void *arg) {
    struct waiter *w = arg;
    redpool_acquire_options o = options_with(w->priority);
    redpool_conn *c = NULL;
    w->status = redpool_pool_acquire_with(w->pool, 20000, &o, &c);
    if (w->status != REDPOOL_STATUS_OK) {
        redpool_last_error_message(w->message, sizeof w->message);
        return NULL;
    }
    /* Numbered before the release, so the other waiter can only be served after this one. */
    w->served = atomic_fetch_add(&served_so_far, 1) + 1;
    check_ping(c);
    redpool_conn_release(&c);
    return NULL;
}

static void test_high_priority_first(const char *url) {
    redpool_pool *pool = open_pool("%s/?max_connections=1&acquire_timeout=60s", url);
    redpool_conn *held = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &held));

    struct waiter normal, high;
    memset(&normal, 0, sizeof normal);
    memset(&high, 0, sizeof high);
    normal.pool = high.pool = pool;
    normal.priority = REDPOOL_PRIORITY_NORMAL;
    high.priority = REDPOOL_PRIORITY_HIGH;

    pthread_t t_normal, t_high;
    CHECK(pthread_create(&t_normal, NULL, wait_for_connection, &normal) == 0);
    wait_for_waiters(pool, 1);
    CHECK(pthread_create(&t_high, NULL, wait_for_connection, &high) == 0);
    wait_for_waiters(pool, 2);
    redpool_conn_release(&held);
    CHECK(pthread_join(t_normal, NULL) == 0);
    CHECK(pthread_join(t_high, NULL) == 0);

    CHECKF(high.status == REDPOOL_STATUS_OK, "the HIGH waiter got %u: %s", high.status,
           high.message);
    CHECKF(normal.status == REDPOOL_STATUS_OK, "the NORMAL waiter got %u: %s", normal.status,
           normal.message);
    CHECKF(high.served == 1 && normal.served == 2,
           "the HIGH waiter, queued second, was served %d, the NORMAL one %d", high.served,
           normal.served);
    redpool_stats st = stats_of(pool);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.waiting, 0);
    close_pool(pool);
}

/* ---- bad options -------------------------------------------------------------------------- */

static void test_bad_options(const char *url) {
    redpool_pool *pool = open_pool("%s/?max_connections=1", url);
    redpool_conn *untouched = (redpool_conn *)&untouched;
    redpool_conn *c = untouched;

    const uint32_t bad[] = {2, 7, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redpool_acquire_options o = options_with(bad[i]);
        CHECK_FAILS(redpool_pool_acquire_with(pool, REDPOOL_TIMEOUT_DEFAULT, &o, &c),
                    REDPOOL_STATUS_INVALID_ARGUMENT);
        CHECK_LAST_ERROR_HAS("options->priority");
        CHECK_LAST_ERROR_HAS("REDPOOL_PRIORITY_HIGH");
        CHECK(c == untouched);
    }
    char value[32];
    snprintf(value, sizeof value, "= %" PRIu32 ":", UINT32_MAX);
    CHECK_LAST_ERROR_HAS(value);

    /* A struct_size that cannot even hold itself. */
    redpool_acquire_options o = options_with(REDPOOL_PRIORITY_HIGH);
    o.struct_size = 0;
    CHECK_FAILS(redpool_pool_acquire_with(pool, REDPOOL_TIMEOUT_DEFAULT, &o, &c),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("options->struct_size");
    CHECK(c == untouched);
    CHECK_EQ_INT(stats_of(pool).in_use, 0);

    /* A struct from a header that had only struct_size: the rest is the defaults, and what lies
     * beyond it is not read (a bad priority there does not count). */
    o = options_with(UINT32_MAX);
    o.struct_size = sizeof(size_t);
    CHECK_OK(redpool_pool_acquire_with(pool, REDPOOL_TIMEOUT_DEFAULT, &o, &c));
    check_ping(c);
    /* Invalid options are refused before any wait: not POOL_EXHAUSTED with the one connection
     * held and a zero timeout. */
    redpool_conn *other = untouched;
    o = options_with(2);
    CHECK_FAILS(redpool_pool_acquire_with(pool, 0, &o, &other), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK(other == untouched);
    redpool_conn_release(&c);
    close_pool(pool);
}

int main(void) {
    const char *url = url_from_env();
    test_try_acquire(url);
    test_high_priority_first(url);
    test_bad_options(url);
    let_background_threads_finish();
    return finish("acquire");
}
