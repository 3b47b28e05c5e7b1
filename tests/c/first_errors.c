/*
 * first_errors.c: the breaker judges calls and errors name the cause (issue 14.7), as a C caller
 * sees it. Against a port with nothing listening, the first calls each fail with
 * REDPOOL_STATUS_CONNECTION naming the refusal (one failed call counts once toward the breaker,
 * however many attempts its retries made); the open circuit then names the failure that opened
 * it. After a wrong password every error is REDPOOL_STATUS_AUTH, never "unreachable".
 *
 * Environment: REDPOOL_TEST_DEAD_PORT (nothing listens there), REDIS_PORT (a server with a
 * password; the program only ever sends a wrong one).
 */
#include "check.h"

static uint64_t retries_of(const redpool_pool *pool) {
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    return st.retries;
}

static uint32_t ping(const redpool_pool *pool) {
    args_t a = args_of("PING", NULL);
    redpool_reply *r = NULL;
    uint32_t status = redpool_pool_command(pool, a.argc, a.argv, NULL, &r);
    CHECK(r == NULL);
    return status;
}

static void test_refused(const char *dead_port) {
    /* Default retries (3) and breaker threshold (5); short backoffs keep the test quick. */
    redpool_pool *pool = open_pool("redis://127.0.0.1:%s/0?retry_backoff_base=5ms"
                                   "&retry_backoff_cap=20ms&reconnect_backoff_base=5ms"
                                   "&reconnect_backoff_cap=20ms",
                                   dead_port);
    for (uint64_t call = 1; call <= 5; call++) {
        uint32_t status = ping(pool);
        CHECKF(status == REDPOOL_STATUS_CONNECTION, "call %" PRIu64 " gave %u (%s): %s", call,
               status, redpool_status_str(status), last_error());
        CHECKF(strstr(last_error(), "refused") != NULL, "call %" PRIu64 ": %s", call,
               last_error());
        CHECKF(retries_of(pool) >= 3 * call, "call %" PRIu64 " was not retried", call);
    }
    CHECK_STATUS(ping(pool), REDPOOL_STATUS_CIRCUIT_OPEN);
    CHECK_LAST_ERROR_HAS("last:");
    CHECK_LAST_ERROR_HAS("refused");
    close_pool(pool);
}

static void test_wrong_password(const char *port) {
    redpool_pool *pool = open_pool(
        "redis://:wrong-pw@127.0.0.1:%s/0?reconnect_backoff_base=2s&reconnect_backoff_cap=2s",
        port);
    for (int call = 1; call <= 3; call++) {
        uint32_t status = ping(pool);
        CHECKF(status == REDPOOL_STATUS_AUTH, "call %d gave %u (%s): %s", call, status,
               redpool_status_str(status), last_error());
        const char *msg = last_error();
        CHECKF(strstr(msg, "authentication") != NULL, "call %d: %s", call, msg);
        CHECKF(strstr(msg, "unreachable") == NULL, "call %d: %s", call, msg);
        CHECKF(strstr(msg, "wrong-pw") == NULL, "call %d shows the password: %s", call, msg);
    }
    close_pool(pool);
}

int main(void) {
    test_refused(env_required("REDPOOL_TEST_DEAD_PORT"));
    test_wrong_password(env_required("REDIS_PORT"));
    let_background_threads_finish();
    return finish("first_errors");
}
