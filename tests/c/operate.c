/*
 * operate.c: what an operator of a C service gets with no code of its own. Prometheus metrics of
 * one pool and of every pool (redpool_pool_metrics_text, redpool_metrics_text), health as JSON,
 * leak detection (an event naming the holder's thread and stack, and a warning on stderr),
 * run-time resizing, and the built-in /metrics and /health HTTP endpoint.
 *
 * Environment: REDIS_URL.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static redpool_pool *pool_with(const char *url, const char *query) {
    char buf[256];
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, query), &pool));
    return pool;
}

static void close_and_free(redpool_pool *pool) {
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void test_metrics(const char *url) {
    redpool_pool *pool = pool_with(url, "/0?pool_name=c-orders&" PLUMBING_ONLY);
    for (int i = 0; i < 3; i++) redpool_reply_free(POOL_CMD(pool, "SET", "k", "v"));
    redpool_reply_free(POOL_CMD(pool, "GET", "k"));

    char *text = NULL;
    CHECK_OK(redpool_pool_metrics_text(pool, &text));
    CHECK(text != NULL);
    CHECKF(strstr(text, "# TYPE redpool_commands_total counter") != NULL, "%s", text);
    CHECKF(strstr(text, "redpool_commands_total{pool=\"c-orders\"") != NULL, "%s", text);
    CHECKF(strstr(text, "command=\"set\",outcome=\"ok\"} 3") != NULL, "%s", text);
    CHECKF(strstr(text, "redpool_command_duration_seconds_bucket{pool=\"c-orders\"") != NULL,
           "%s", text);
    redpool_string_free(text);

    text = NULL;
    CHECK_OK(redpool_metrics_text(&text));
    CHECKF(strstr(text, "pool=\"c-orders\"") != NULL, "the process-wide text has the pool");
    redpool_string_free(text);
    redpool_string_free(NULL);

    char *json = NULL;
    CHECK_OK(redpool_pool_health_json(pool, &json));
    CHECKF(strncmp(json, "{\"status\":\"healthy\"", 19) == 0, "%s", json);
    CHECKF(strstr(json, "\"suggested_max_connections\":") != NULL, "%s", json);
    redpool_string_free(json);

    CHECK_FAILS(redpool_pool_metrics_text(pool, NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_FAILS(redpool_pool_metrics_text(NULL, &text), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_FAILS(redpool_metrics_text(NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    close_and_free(pool);
}

/* ---- leak detection ----------------------------------------------------------------------- */

static _Atomic int leaks_seen;
static char leak_thread[128];
static char leak_stack_head[64];

static void on_event(void *userdata, const redpool_event *event) {
    (void)userdata;
    if (event->type != REDPOOL_EVENT_LEAK_SUSPECTED) return;
    snprintf(leak_thread, sizeof leak_thread, "%s", event->holder_thread);
    snprintf(leak_stack_head, sizeof leak_stack_head, "%s", event->holder_stack);
    CHECK(event->held_us >= 200000);
    CHECK(event->connection_id > 0);
    atomic_fetch_add(&leaks_seen, 1);
}

static void test_leak_event(const char *url) {
    redpool_pool *pool = pool_with(url, "/0?leak_detection_threshold=200ms");
    uint64_t sub = 0;
    CHECK_OK(redpool_pool_subscribe(pool, on_event, NULL, &sub));
    redpool_conn *c = NULL;
    CHECK(pthread_setname_np(pthread_self(), "c-leak-holder") == 0);
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    double deadline = now_ms() + 20000;
    while (atomic_load(&leaks_seen) == 0 && now_ms() < deadline) sleep_ms(20);
    CHECKF(atomic_load(&leaks_seen) == 1, "one leak event, got %d", atomic_load(&leaks_seen));
    /* The holder is named as C knows the thread: its pthread name and OS thread id. */
    CHECKF(strstr(leak_thread, "\"c-leak-holder\"") != NULL, "holder thread: %s", leak_thread);
    CHECKF(strstr(leak_thread, "(tid ") != NULL, "holder thread: %s", leak_thread);
    CHECKF(strstr(leak_stack_head, "redpool::") == NULL, "stack starts at the caller: %s",
           leak_stack_head);
    CHECKF(leak_stack_head[0] != '\0', "a stack is captured");
    redpool_conn_release(&c);

    redpool_stats st;
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.leaks_suspected, 1);
    CHECK_OK(redpool_pool_unsubscribe(pool, sub));
    close_and_free(pool);
}

static void ignore_event(void *userdata, const redpool_event *event) {
    (void)userdata;
    (void)event;
}

/* The warning goes to stderr, even when the program subscribed to events (for other reasons). */
static void test_leak_warning_on_stderr(const char *url) {
    char path[] = "/tmp/redpool-operate-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    CHECK(dup2(fd, 2) == 2);

    redpool_pool *pool = pool_with(url, "/0?leak_detection_threshold=150ms");
    uint64_t sub = 0;
    CHECK_OK(redpool_pool_subscribe(pool, ignore_event, NULL, &sub));
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_stats st;
    st.struct_size = sizeof st;
    double deadline = now_ms() + 20000;
    do {
        sleep_ms(20);
        CHECK_OK(redpool_pool_stats(pool, &st));
    } while (st.leaks_suspected == 0 && now_ms() < deadline);
    redpool_conn_release(&c);
    close_and_free(pool);

    char buf[4096] = {0};
    ssize_t n = 0;
    deadline = now_ms() + 20000;
    while ((n = pread(fd, buf, sizeof buf - 1, 0)) <= 0 && now_ms() < deadline) sleep_ms(20);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    unlink(path);
    CHECK(n > 0);
    CHECKF(strstr(buf, "possible leak") != NULL, "stderr: %s", buf);
    CHECKF(strstr(buf, "leak_detection_threshold") != NULL, "stderr: %s", buf);
}

/* ---- resize ------------------------------------------------------------------------------- */

static void test_resize(const char *url) {
    redpool_pool *pool = pool_with(url, "/0?max_connections=2");
    CHECK_OK(redpool_pool_resize(pool, 6, 1));
    redpool_stats st;
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.max_connections, 6);
    CHECK_EQ_INT(st.min_idle, 1);
    CHECK_FAILS(redpool_pool_resize(pool, 0, 0), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("max_connections");
    CHECK_FAILS(redpool_pool_resize(pool, 2, 5), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("min_idle");
    CHECK_FAILS(redpool_pool_resize(NULL, 2, 0), REDPOOL_STATUS_INVALID_ARGUMENT);
    close_and_free(pool);
}

/* ---- disconnect --------------------------------------------------------------------------- */

static void test_disconnect(const char *url) {
    redpool_pool *pool = pool_with(url, "/0?max_connections=2");
    redpool_reply_free(POOL_CMD(pool, "PING"));
    CHECK_OK(redpool_pool_disconnect(pool));
    redpool_stats st;
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.idle, 0);
    CHECK_EQ_INT(st.closed_discarded, 1);
    /* The pool stays open: the next command opens a new connection. */
    redpool_reply *r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    redpool_reply_free(r);
    CHECK_FAILS(redpool_pool_disconnect(NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_OK(redpool_pool_close(pool, 0));
    CHECK_FAILS(redpool_pool_disconnect(pool), REDPOOL_STATUS_CLOSED);
    redpool_pool_free(pool);
}

/* ---- the HTTP endpoint -------------------------------------------------------------------- */

/* GET `path` from 127.0.0.1:`port`; returns the whole response in `buf`. */
static void http_get(uint16_t port, const char *path, char *buf, size_t len) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct timeval tv = {10, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(s, (struct sockaddr *)&addr, sizeof addr) == 0);
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    CHECK(write(s, req, (size_t)n) == n);
    size_t got = 0;
    ssize_t r;
    while (got < len - 1 && (r = read(s, buf + got, len - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(s);
}

static void test_endpoint(const char *url) {
    redpool_pool *pool = pool_with(url, "/0?pool_name=c-http&" PLUMBING_ONLY);
    redpool_reply_free(POOL_CMD(pool, "PING"));
    uint16_t port = 0;
    CHECK_OK(redpool_metrics_serve("127.0.0.1:0", &port));
    CHECK(port != 0);
    static char buf[256 * 1024];
    http_get(port, "/metrics", buf, sizeof buf);
    CHECKF(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0, "%.200s", buf);
    CHECKF(strstr(buf, "text/plain; version=0.0.4") != NULL, "%.300s", buf);
    CHECKF(strstr(buf, "redpool_connections{pool=\"c-http\"") != NULL, "%.300s", buf);
    http_get(port, "/health", buf, sizeof buf);
    CHECKF(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0, "%.300s", buf);
    CHECKF(strstr(buf, "\"pool\":\"c-http\"") != NULL, "%.600s", buf);
    http_get(port, "/nope", buf, sizeof buf);
    CHECKF(strncmp(buf, "HTTP/1.1 404", 12) == 0, "%.200s", buf);

    /* Only loopback addresses; a second endpoint is refused. */
    CHECK_FAILS(redpool_metrics_serve("0.0.0.0:0", NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("loopback");
    CHECK_FAILS(redpool_metrics_serve("not an address", NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_FAILS(redpool_metrics_serve(NULL, NULL), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK(redpool_metrics_stop());
    CHECK(!redpool_metrics_stop());
    close_and_free(pool);
}

int main(void) {
    const char *url = url_from_env();
    test_metrics(url);
    test_leak_event(url);
    test_leak_warning_on_stderr(url);
    test_resize(url);
    test_disconnect(url);
    test_endpoint(url);
    let_background_threads_finish();
    return finish("operate");
}
