/*
 * deadlines.c: a deadline is a deadline (issue 14.1), as a C caller sees it. Through a proxy that
 * forwards the server's bytes one at a time, 200 ms apart (a 100-byte reply takes over 20 s):
 * - a GET, a pipeline and a transaction end with REDPOOL_STATUS_TIMEOUT by socket_timeout
 *   (500 ms) for the whole reply, not per read;
 * - redpool_pool_command_timeout's timeout is the call's deadline, retries included;
 * - the AUTH/SETNAME handshake of a new connection ends by connect_timeout (500 ms).
 *
 * The bounds are generous (4 s, valgrind and loaded machines): they tell an answer by the
 * deadline from the 20 s a dribbled reply takes, not a speed.
 *
 * Environment: REDIS_URL (the server, direct), REDPOOL_TEST_DRIBBLE_PORT (a dribbling proxy to
 * it), REDPOOL_TEST_AUTH_DRIBBLE_PORT (a dribbling proxy to a server with the password
 * REDPOOL_TEST_PASSWORD, letters only).
 */
#include "check.h"

/* Far below the 20 s a dribbled reply takes, far above the 500 ms deadlines. */
#define ANSWERED_BY_MS 4000.0

/* k holds 100 bytes, set on the server directly (not through the dribbling proxy). */
static void store_hundred_bytes(const char *url) {
    redpool_pool *direct = open_pool("%s", url);
    char value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    redpool_reply *r = POOL_CMD(direct, "SET", "k", value);
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    close_pool(direct);
}

/* The call must fail with TIMEOUT within ANSWERED_BY_MS of `started`. */
static void check_timed_out(uint32_t status, double started, const char *what) {
    double took = now_ms() - started;
    CHECKF(status == REDPOOL_STATUS_TIMEOUT, "%s gave %u (%s), expected TIMEOUT", what, status,
           redpool_status_str(status));
    CHECKF(took < ANSWERED_BY_MS, "%s answered after %.0f ms", what, took);
}

static void test_dribbled_reply(const char *port) {
    /* No client name: no handshake reply to dribble, so the call is the GET alone. */
    redpool_pool *pool =
        open_pool("redis://127.0.0.1:%s/0?socket_timeout=500ms&retries=0&client_name=", port);
    args_t get = args_of("GET", "k", NULL);
    redpool_reply *r = NULL;
    double started = now_ms();
    check_timed_out(redpool_pool_command(pool, get.argc, get.argv, NULL, &r), started, "GET");
    CHECK(r == NULL);
    CHECKF(now_ms() - started >= 450, "GET gave up after %.0f ms", now_ms() - started);
    CHECK_LAST_ERROR_HAS("timed out");

    /* A pipeline and a transaction are bounded the same way. */
    redpool_cmd cmds[1] = {cmd_of(&get)};
    started = now_ms();
    check_timed_out(redpool_pool_pipeline(pool, 1, cmds, &r), started, "a pipeline");
    started = now_ms();
    check_timed_out(redpool_pool_transaction(pool, 1, cmds, &r), started, "a transaction");
    CHECK(r == NULL);
    close_pool(pool);
}

static void test_call_timeout_is_the_calls_deadline(const char *port) {
    /* socket_timeout alone would allow 30 s per attempt, and GET may be retried 3 times. */
    redpool_pool *pool =
        open_pool("redis://127.0.0.1:%s/0?socket_timeout=30s&retries=3&client_name=", port);
    args_t get = args_of("GET", "k", NULL);
    redpool_reply *r = NULL;
    double started = now_ms();
    check_timed_out(redpool_pool_command_timeout(pool, 1000, get.argc, get.argv, NULL, &r),
                    started, "GET with a 1000 ms timeout");
    CHECK(r == NULL);
    close_pool(pool);
}

static void test_dribbled_handshake(const char *port, const char *password) {
    /* AUTH and CLIENT SETNAME are answered +OK each: 10 bytes, 2 s dribbled. */
    redpool_pool *pool = open_pool("redis://:%s@127.0.0.1:%s/0?connect_timeout=500ms&retries=0",
                                   password, port);
    args_t ping = args_of("PING", NULL);
    redpool_reply *r = NULL;
    double started = now_ms();
    check_timed_out(redpool_pool_command(pool, ping.argc, ping.argv, NULL, &r), started,
                    "PING on a new connection");
    CHECK(r == NULL);
    CHECK_LAST_ERROR_HAS("handshake");
    close_pool(pool);
}

int main(void) {
    const char *url = url_from_env();
    const char *dribble_port = env_required("REDPOOL_TEST_DRIBBLE_PORT");
    store_hundred_bytes(url);
    test_dribbled_reply(dribble_port);
    test_call_timeout_is_the_calls_deadline(dribble_port);
    test_dribbled_handshake(env_required("REDPOOL_TEST_AUTH_DRIBBLE_PORT"),
                            env_required("REDPOOL_TEST_PASSWORD"));
    let_background_threads_finish();
    return finish("deadlines");
}
