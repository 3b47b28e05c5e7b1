/*
 * lifecycle.c: versions, configs, status strings, the per-thread last error, pool creation
 * (dedicated, from URL, from the environment, shared), free/close rules.
 *
 * Environment: REDIS_URL (a live server), REDPOOL_TEST_DEAD_PORT (a port nobody listens on).
 */
#include "check.h"

#include <pthread.h>

/* ---- versions ----------------------------------------------------------------------------- */

static void test_version(void) {
    const char *v = redpool_version();
    CHECK(v != NULL);
    CHECK_STREQ(v, REDPOOL_VERSION);
    CHECK_EQ_INT(redpool_version_number(), REDPOOL_VERSION_NUMBER);
    uint32_t n = redpool_version_number();
    CHECK_EQ_INT((n >> 24) & 0xff, REDPOOL_VERSION_MAJOR);
    CHECK_EQ_INT((n >> 16) & 0xff, REDPOOL_VERSION_MINOR);
    CHECK_EQ_INT((n >> 8) & 0xff, REDPOOL_VERSION_PATCH);
    CHECK_EQ_INT(n & 0xff, 0);
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", REDPOOL_VERSION_MAJOR, REDPOOL_VERSION_MINOR,
             REDPOOL_VERSION_PATCH);
    CHECK_STREQ(v, text);
}

/* ---- status codes ------------------------------------------------------------------------- */

static void test_status_strings(void) {
    const char *seen[REDPOOL_STATUS_PANIC + 1];
    for (uint32_t s = REDPOOL_STATUS_OK; s <= REDPOOL_STATUS_PANIC; s++) {
        const char *text = redpool_status_str(s);
        CHECKF(text != NULL && text[0] != '\0', "status %u has no text", s);
        CHECKF(strcmp(text, "unknown status") != 0, "status %u is unknown", s);
        for (uint32_t t = 0; t < s; t++)
            CHECKF(strcmp(seen[t], text) != 0, "statuses %u and %u share \"%s\"", t, s, text);
        seen[s] = text;
        /* Static: the same pointer every time. */
        CHECK(redpool_status_str(s) == text);
    }
    CHECK_STREQ(redpool_status_str(REDPOOL_STATUS_OK), "ok");
    const uint32_t unknown[] = {REDPOOL_STATUS_PANIC + 1, 99, 0x7fffffffu, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *text = redpool_status_str(unknown[i]);
        CHECKF(text != NULL, "status_str(%u) is NULL", unknown[i]);
        CHECK_STREQ(text, "unknown status");
        CHECK(!redpool_status_is_retryable(unknown[i]));
    }

    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_OK));
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_CONNECTION));
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_TIMEOUT));
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_POOL_EXHAUSTED));
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_CIRCUIT_OPEN));
    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_AUTH));
    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_RESPONSE));
    /* The core's ErrorKind::is_transient: a protocol error closed the connection; a new one may
     * work (the core retries it too). */
    CHECK(redpool_status_is_retryable(REDPOOL_STATUS_PROTOCOL));
    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_INVALID_ARGUMENT));
    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_CLOSED));
    CHECK(!redpool_status_is_retryable(REDPOOL_STATUS_PANIC));

    /* The documented, stable values. */
    CHECK_EQ_INT(REDPOOL_STATUS_OK, 0);
    CHECK_EQ_INT(REDPOOL_STATUS_CONNECTION, 1);
    CHECK_EQ_INT(REDPOOL_STATUS_INVALID_ARGUMENT, 8);
    CHECK_EQ_INT(REDPOOL_STATUS_PANIC, 10);
    CHECK_EQ_INT(REDPOOL_REPLY_STRING, 1); /* hiredis's REDIS_REPLY_STRING */
    CHECK_EQ_INT(REDPOOL_REPLY_ERROR, 6);  /* hiredis's REDIS_REPLY_ERROR */
    CHECK_EQ_INT(REDPOOL_REPLY_VERB, 14);  /* hiredis's REDIS_REPLY_VERB */
}

/* ---- the last error message --------------------------------------------------------------- */

/* Makes this thread's last error "invalid option = \"<knob>\": unknown; valid options are ..." */
static void fail_with_unknown_knob(const char *knob) {
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_new(&cfg));
    CHECK_STATUS(redpool_config_set(cfg, knob, "1"), REDPOOL_STATUS_INVALID_ARGUMENT);
    /* config_free is not a fallible call: it leaves the message alone. */
    redpool_config_free(cfg);
}

static void *other_thread(void *arg) {
    (void)arg;
    /* A new thread starts with no message, whatever the main thread did. */
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), 0);
    fail_with_unknown_knob("knob_of_the_other_thread");
    CHECK_LAST_ERROR_HAS("knob_of_the_other_thread");
    return NULL;
}

static void test_last_error(void) {
    redpool_clear_last_error();
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), 0);
    char buf[8] = "xxxxxxx";
    CHECK_EQ_INT(redpool_last_error_message(buf, sizeof buf), 0);
    CHECK_EQ_INT(buf[0], '\0');

    fail_with_unknown_knob("no_such_knob");
    size_t full = redpool_last_error_message(NULL, 0);
    CHECKF(full > 20, "message too short: %zu", full);

    /* Exactly big enough. */
    char *exact = malloc(full + 1);
    CHECK(exact != NULL);
    memset(exact, 'x', full + 1);
    CHECK_EQ_INT(redpool_last_error_message(exact, full + 1), full);
    CHECK_EQ_INT(strlen(exact), full);
    CHECK(strstr(exact, "no_such_knob") != NULL);
    CHECK(strstr(exact, "max_connections") != NULL); /* lists the valid ones */

    /* One byte short: truncated, still terminated, same return value. */
    char *shorter = malloc(full);
    CHECK(shorter != NULL);
    memset(shorter, 'x', full);
    CHECK_EQ_INT(redpool_last_error_message(shorter, full), full);
    CHECK_EQ_INT(strlen(shorter), full - 1);
    CHECK(memcmp(shorter, exact, full - 1) == 0);

    /* Tiny buffers. */
    char five[5] = "yyyy";
    CHECK_EQ_INT(redpool_last_error_message(five, sizeof five), full);
    CHECK_EQ_INT(strlen(five), 4);
    CHECK(memcmp(five, exact, 4) == 0);
    char one[1] = {'z'};
    CHECK_EQ_INT(redpool_last_error_message(one, 1), full);
    CHECK_EQ_INT(one[0], '\0');

    /* len 0: nothing written, even with a buffer. */
    char untouched[4] = "abc";
    CHECK_EQ_INT(redpool_last_error_message(untouched, 0), full);
    CHECK_STREQ(untouched, "abc");

    /* Reading it does not clear it. */
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), full);

    /* Per thread. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), full);
    CHECK_LAST_ERROR_HAS("no_such_knob");

    /* A successful fallible call clears it. */
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_new(&cfg));
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), 0);
    redpool_config_free(cfg);

    /* So does redpool_clear_last_error. */
    fail_with_unknown_knob("again");
    CHECK(redpool_last_error_message(NULL, 0) > 0);
    redpool_clear_last_error();
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), 0);

    free(exact);
    free(shorter);
}

/* ---- configs ------------------------------------------------------------------------------ */

/* Sets a knob that must be rejected at once, with a message naming the knob and the value. */
static void check_bad_knob(redpool_config *cfg, const char *key, const char *value) {
    CHECK_FAILS(redpool_config_set(cfg, key, value), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS(key);
    CHECK_LAST_ERROR_HAS(value);
}

static void test_config(const char *url) {
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_new(&cfg));
    CHECK(cfg != NULL);
    CHECK_OK(redpool_config_validate(cfg));

    /* Valid knobs of each kind. */
    CHECK_OK(redpool_config_set(cfg, "max_connections", "8"));
    CHECK_OK(redpool_config_set(cfg, "min_idle", "0"));
    CHECK_OK(redpool_config_set(cfg, "socket_timeout", "250ms"));
    CHECK_OK(redpool_config_set(cfg, "connect_timeout", "1.5s"));
    CHECK_OK(redpool_config_set(cfg, "acquire_timeout", "2"));
    CHECK_OK(redpool_config_set(cfg, "breaker", "off"));
    CHECK_OK(redpool_config_set(cfg, "tcp_nodelay", "yes"));
    CHECK_OK(redpool_config_set(cfg, "reuse", "fifo"));
    CHECK_OK(redpool_config_set(cfg, "client_name", "lifecycle-test"));
    CHECK_OK(redpool_config_set(cfg, "retry_jitter", "none"));
    CHECK_OK(redpool_config_validate(cfg));

    /* Wrong form: rejected by set, naming the knob and the value. */
    check_bad_knob(cfg, "socket_timeout", "soon");
    check_bad_knob(cfg, "socket_timeout", "5 fortnights");
    check_bad_knob(cfg, "socket_timeout", "-1s");
    check_bad_knob(cfg, "max_connections", "many");
    check_bad_knob(cfg, "max_connections", "-3");
    check_bad_knob(cfg, "tcp_nodelay", "maybe");
    check_bad_knob(cfg, "reuse", "random");
    check_bad_knob(cfg, "retry_jitter", "lots");
    /* Unknown knob: names it and lists the valid ones. */
    CHECK_FAILS(redpool_config_set(cfg, "max_conections", "3"), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_conections");
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK_FAILS(redpool_config_set(cfg, "", "3"), REDPOOL_STATUS_INVALID_ARGUMENT);
    /* TLS knobs need rediss:// */
    CHECK_FAILS(redpool_config_set(cfg, "tls_insecure", "true"), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("tls_insecure");
    /* Invalid UTF-8 */
    CHECK_FAILS(redpool_config_set(cfg, "client_name", "caf\xc3"), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("UTF-8");
    /* The failed sets left the valid settings in place. */
    CHECK_OK(redpool_config_validate(cfg));

    /* Right form, wrong range: accepted by set, rejected by validate and by pool_new. */
    CHECK_OK(redpool_config_set(cfg, "max_connections", "0"));
    CHECK_FAILS(redpool_config_validate(cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    redpool_pool *sentinel = (redpool_pool *)&sentinel;
    redpool_pool *pool = sentinel;
    CHECK_FAILS(redpool_pool_new(cfg, &pool), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK_LAST_ERROR_HAS("0");
    CHECK(pool == sentinel); /* outputs are written only on success */
    CHECK_FAILS(redpool_pool_shared_config(cfg, &pool), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK(pool == sentinel);

    CHECK_OK(redpool_config_set(cfg, "max_connections", "2"));
    CHECK_OK(redpool_config_set(cfg, "min_idle", "3"));
    CHECK_FAILS(redpool_config_validate(cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("min_idle");
    CHECK_OK(redpool_config_set(cfg, "min_idle", "0"));
    CHECK_OK(redpool_config_set(cfg, "socket_timeout", "0"));
    CHECK_FAILS(redpool_config_validate(cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("socket_timeout");
    CHECK_OK(redpool_config_set(cfg, "socket_timeout", "5000")); /* seconds: too long */
    CHECK_FAILS(redpool_config_validate(cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("socket_timeout");
    CHECK_OK(redpool_config_set(cfg, "socket_timeout", "2s"));
    CHECK_OK(redpool_config_set(cfg, "client_name", "")); /* empty: no name */
    CHECK_OK(redpool_config_validate(cfg));
    redpool_config_free(cfg);

    /* URLs. */
    CHECK_OK(redpool_config_from_url(url, &cfg));
    CHECK_OK(redpool_config_validate(cfg));
    redpool_config_free(cfg);
    redpool_config *untouched = (redpool_config *)&untouched;
    cfg = untouched;
    CHECK_FAILS(redpool_config_from_url("http://127.0.0.1:6379", &cfg),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("scheme");
    CHECK(cfg == untouched);
    CHECK_FAILS(redpool_config_from_url("not a url", &cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("url");
    CHECK_FAILS(redpool_config_from_url("", &cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_FAILS(redpool_config_from_url("redis://127.0.0.1:6379/?max_connections=lots", &cfg),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK_LAST_ERROR_HAS("lots");
    CHECK_FAILS(redpool_config_from_url("redis://127.0.0.1:6379/notadb", &cfg),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("db");
    /* A password in a rejected URL never shows up in the message. */
    CHECK_FAILS(
        redpool_config_from_url("redis://me:hunter2-secret@127.0.0.1:6379/?socket_timeout=x", &cfg),
        REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("socket_timeout");
    CHECK(strstr(last_error(), "hunter2") == NULL);
    CHECK(cfg == untouched);

    /* From the environment: a bad knob variable is named, with its value. */
    CHECK(setenv("REDIS_MAX_CONNECTIONS", "plenty", 1) == 0);
    CHECK_FAILS(redpool_config_from_env(&cfg), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("REDIS_MAX_CONNECTIONS");
    CHECK_LAST_ERROR_HAS("plenty");
    CHECK(cfg == untouched);
    CHECK_FAILS(redpool_pool_shared_default(&pool), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("REDIS_MAX_CONNECTIONS");
    CHECK(unsetenv("REDIS_MAX_CONNECTIONS") == 0);

    /* From the environment (REDIS_URL). */
    CHECK_OK(redpool_config_from_env(&cfg));
    CHECK_OK(redpool_config_set(cfg, "client_name", "from-env"));
    CHECK_OK(redpool_pool_new(cfg, &pool));
    /* The pool copied the config: freeing it now is fine. */
    redpool_config_free(cfg);
    redpool_reply *r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "CLIENT", "GETNAME");
    CHECK_STRING(r, "from-env");
    redpool_reply_free(r);
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

/* ---- pools -------------------------------------------------------------------------------- */

static void test_pool_from_url(const char *url) {
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    CHECK(pool != NULL);
    redpool_reply *r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);

    /* Two dedicated pools for the same URL are two pools. */
    redpool_pool *other = NULL;
    CHECK_OK(redpool_pool_from_url(url, &other));
    CHECK(other != pool);

    /* Close twice: fine. Then every call fails with CLOSED, naming the cause. */
    CHECK_OK(redpool_pool_close(pool, 0));
    CHECK_OK(redpool_pool_close(pool, 0));
    r = NULL;
    args_t ping = args_of("PING", NULL);
    CHECK_FAILS(redpool_pool_command(pool, ping.argc, ping.argv, NULL, &r),
                REDPOOL_STATUS_CLOSED);
    CHECK_LAST_ERROR_HAS("closed");
    CHECK(r == NULL);
    redpool_conn *c = NULL;
    CHECK_FAILS(redpool_pool_acquire(pool, 0, &c), REDPOOL_STATUS_CLOSED);
    CHECK(c == NULL);
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st)); /* still a valid handle */
    CHECK_EQ_INT(st.open, 0);
    redpool_pool_free(pool);

    /* The other pool is unaffected. */
    r = POOL_CMD(other, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    /* Freed without closing: its connections close when the last handle goes. */
    redpool_pool_free(other);

    /* Bad URLs. */
    redpool_pool *untouched = (redpool_pool *)&untouched;
    pool = untouched;
    CHECK_FAILS(redpool_pool_from_url("ftp://127.0.0.1", &pool), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_FAILS(redpool_pool_from_url("redis://127.0.0.1:6379/?max_connections=0", &pool),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK(pool == untouched);
}

static void test_dead_server(void) {
    const char *port = env_required("REDPOOL_TEST_DEAD_PORT");
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%s/?retries=0&connect_timeout=2s", port);
    /* A server that is down is not an error at creation. */
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    redpool_reply *r = NULL;
    args_t ping = args_of("PING", NULL);
    uint32_t st = redpool_pool_command(pool, ping.argc, ping.argv, NULL, &r);
    CHECKF(st == REDPOOL_STATUS_CONNECTION, "PING on a dead port gave %u (%s): %s", st,
           redpool_status_str(st), last_error());
    CHECK(redpool_status_is_retryable(st));
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%s", port);
    CHECK_LAST_ERROR_HAS(where);
    CHECK(r == NULL);
    CHECK_OK(redpool_pool_close(pool, 0));
    redpool_pool_free(pool);
}

static void test_shared(const char *url) {
    redpool_pool *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL;
    CHECK_OK(redpool_pool_shared(url, &a));
    CHECK_OK(redpool_pool_shared(url, &b));
    CHECK(a != NULL && a == b);
    /* The same normalized settings: "/0" is the default db. */
    char with_db[256];
    CHECK_OK(redpool_pool_shared(url_with(with_db, sizeof with_db, url, "/0"), &c));
    CHECK(c == a);
    /* The same settings as a config, and from the environment (REDIS_URL). */
    redpool_config *cfg = NULL;
    CHECK_OK(redpool_config_from_url(url, &cfg));
    CHECK_OK(redpool_pool_shared_config(cfg, &d));
    CHECK(d == a);
    CHECK_OK(redpool_pool_shared_default(&e));
    CHECK(e == a);
    /* Different settings: a different pool. */
    char other[256];
    CHECK_OK(redpool_pool_shared(url_with(other, sizeof other, url, "/?max_connections=3"), &f));
    CHECK(f != a);

    redpool_reply *r = POOL_CMD(a, "SET", "lifecycle:shared", "1");
    redpool_reply_free(r);
    r = POOL_CMD(f, "GET", "lifecycle:shared");
    CHECK_STRING(r, "1");
    redpool_reply_free(r);

    /* Each successful call is paired with one free; the pool lives while handles remain. */
    redpool_pool_free(b);
    redpool_pool_free(c);
    redpool_pool_free(d);
    r = POOL_CMD(a, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    r = POOL_CMD(e, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);

    /* A closed shared pool is replaced on the next request. */
    CHECK_OK(redpool_pool_close(a, 1000));
    redpool_pool *g = NULL;
    CHECK_OK(redpool_pool_shared(url, &g));
    CHECK(g != a);
    r = POOL_CMD(g, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    redpool_pool *h = NULL;
    CHECK_OK(redpool_pool_shared(url, &h));
    CHECK(h == g);

    /* Shared pools live in the process-wide registry: close them so their threads end. */
    CHECK_OK(redpool_pool_close(g, 1000));
    CHECK_OK(redpool_pool_close(f, 1000));
    redpool_pool_free(a);
    redpool_pool_free(e);
    redpool_pool_free(f);
    redpool_pool_free(g);
    redpool_pool_free(h);
    redpool_config_free(cfg);
}

static void test_free_null(void) {
    redpool_config_free(NULL);
    redpool_pool_free(NULL);
    redpool_reply_free(NULL);
    redpool_conn_release(NULL);
    redpool_conn_discard(NULL);
    redpool_conn *none = NULL;
    redpool_conn_release(&none);
    redpool_conn_discard(&none);
    CHECK(none == NULL);
}

int main(void) {
    const char *url = url_from_env();
    test_version();
    test_status_strings();
    test_last_error();
    test_config(url);
    test_pool_from_url(url);
    test_dead_server();
    test_shared(url);
    test_free_null();
    let_background_threads_finish();
    return finish("lifecycle");
}
