/*
 * threads.c: 16 pthreads share one pool capped at 4 connections. Each thread runs its own
 * SET/GET sequence (one-shot commands, pipelines and checked-out connections) on its own keys and
 * checks every reply against what it wrote, so a reply delivered to the wrong caller or a desync
 * fails at once. Meanwhile all threads read one shared reply tree, and each checks that its
 * last-error message is its own. Afterwards the server's CLIENT LIST shows at most 4 connections
 * with the pool's client name, and the pool's stats agree.
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

#include <pthread.h>
#include <unistd.h>

enum { THREADS = 16, MAX_CONNECTIONS = 4, SHARED_ITEMS = 50 };

enum { ITERATIONS = 300 };
static const int iterations = ITERATIONS;
static const redpool_pool *pool;
static const redpool_reply *shared_reply; /* read by every thread at once */
static const char *shared_url;            /* every thread asks for this shared pool at once */
static redpool_pool *shared_handles[THREADS];
static pthread_barrier_t start_line;

static void check_shared_reply(void) {
    CHECK_TYPE(shared_reply, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(shared_reply->elements, SHARED_ITEMS);
    for (size_t i = 0; i < SHARED_ITEMS; i++) {
        char want[32];
        snprintf(want, sizeof want, "item-%zu", i);
        CHECK_STRING(shared_reply->element[i], want);
    }
}

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    char key[64], val[64], knob[64];
    snprintf(knob, sizeof knob, "knob_of_thread_%d", t);
    pthread_barrier_wait(&start_line);

    /* All threads ask for the same shared pool at the same moment: one pool, one handle value. */
    CHECK_OK(redpool_pool_shared(shared_url, &shared_handles[t]));
    redpool_reply *pong = POOL_CMD(shared_handles[t], "PING");
    CHECK_STATUS_REPLY(pong, "PONG");
    redpool_reply_free(pong);

    for (int i = 0; i < iterations; i++) {
        snprintf(key, sizeof key, "threads:%d:%d", t, i);
        snprintf(val, sizeof val, "value-%d-%d", t, i);
        redpool_reply *r;
        switch (i % 3) {
        case 0: { /* one-shot commands on the pool */
            r = POOL_CMD(pool, "SET", key, val);
            CHECK_STATUS_REPLY(r, "OK");
            redpool_reply_free(r);
            r = POOL_CMD(pool, "GET", key);
            CHECK_STRING(r, val);
            redpool_reply_free(r);
            break;
        }
        case 1: { /* a pipeline on the pool */
            args_t set = args_of("SET", key, val, NULL);
            args_t get = args_of("GET", key, NULL);
            args_t incr = args_of("INCR", "threads:total", NULL);
            redpool_cmd cmds[3] = {cmd_of(&set), cmd_of(&get), cmd_of(&incr)};
            r = NULL;
            CHECK_OK(redpool_pool_pipeline(pool, 3, cmds, &r));
            CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
            CHECK_EQ_INT(r->elements, 3);
            CHECK_STATUS_REPLY(r->element[0], "OK");
            CHECK_STRING(r->element[1], val);
            CHECK_TYPE(r->element[2], REDPOOL_REPLY_INTEGER);
            redpool_reply_free(r);
            break;
        }
        default: { /* a checked-out connection */
            redpool_conn *c = NULL;
            CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
            r = CONN_CMD(c, "SET", key, val);
            CHECK_STATUS_REPLY(r, "OK");
            redpool_reply_free(r);
            r = CONN_CMD(c, "GET", key);
            CHECK_STRING(r, val);
            redpool_reply_free(r);
            redpool_conn_release(&c);
            CHECK(c == NULL);
            break;
        }
        }
        if (i % 50 == 0) {
            check_shared_reply();
            /* The last error is per thread: this thread's failure, not another's. */
            redpool_config *cfg = NULL;
            CHECK_OK(redpool_config_new(&cfg));
            CHECK_STATUS(redpool_config_set(cfg, knob, "1"), REDPOOL_STATUS_INVALID_ARGUMENT);
            redpool_config_free(cfg);
            sched_yield();
            CHECK_LAST_ERROR_HAS(knob);
        }
    }

    /* Everything this thread wrote is still there, read back in one MGET. */
    args_t mget;
    for (int base = 0; base < iterations; base += 15) {
        char keys[15][64];
        mget.argc = 0;
        mget.argv[mget.argc++] = "MGET";
        int n = iterations - base < 15 ? iterations - base : 15;
        for (int j = 0; j < n; j++) {
            snprintf(keys[j], sizeof keys[j], "threads:%d:%d", t, base + j);
            mget.argv[mget.argc++] = keys[j];
        }
        redpool_reply *r = NULL;
        CHECK_OK(redpool_pool_command(pool, mget.argc, mget.argv, NULL, &r));
        CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
        CHECK_EQ_INT(r->elements, n);
        for (int j = 0; j < n; j++) {
            snprintf(val, sizeof val, "value-%d-%d", t, base + j);
            CHECK_STRING(r->element[j], val);
        }
        redpool_reply_free(r);
    }
    return NULL;
}

int main(void) {
    const char *url = url_from_env();
    char name[64], suffix[160], buf[256];
    snprintf(name, sizeof name, "c-threads-%ld", (long)getpid());
    snprintf(suffix, sizeof suffix,
             "/?max_connections=%d&client_name=%s&acquire_timeout=30s&socket_timeout=10s",
             MAX_CONNECTIONS, name);
    redpool_pool *p = NULL;
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, suffix), &p));
    pool = p;
    char shared_buf[256];
    shared_url = url_with(shared_buf, sizeof shared_buf, url, "/?max_connections=7");

    /* One reply tree, read by all threads at once. */
    redpool_reply *r = POOL_CMD(pool, "DEL", "threads:shared", "threads:total");
    redpool_reply_free(r);
    for (int i = 0; i < SHARED_ITEMS; i++) {
        char item[32];
        snprintf(item, sizeof item, "item-%d", i);
        r = POOL_CMD(pool, "RPUSH", "threads:shared", item);
        redpool_reply_free(r);
    }
    redpool_reply *shared = POOL_CMD(pool, "LRANGE", "threads:shared", "0", "-1");
    shared_reply = shared;

    CHECK(pthread_barrier_init(&start_line, NULL, THREADS) == 0);
    pthread_t threads[THREADS];
    double started = now_ms();
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t) == 0);
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(threads[t], NULL) == 0);
    double took = now_ms() - started;
    pthread_barrier_destroy(&start_line);
    redpool_reply_free(shared);

    /* One shared pool came out of the race; each handle is freed once, the pool closed once. */
    for (int t = 1; t < THREADS; t++)
        CHECKF(shared_handles[t] == shared_handles[0], "threads 0 and %d got other pools", t);
    CHECK_OK(redpool_pool_close(shared_handles[0], 1000));
    for (int t = 0; t < THREADS; t++) redpool_pool_free(shared_handles[t]);

    /* Every pipeline's INCR was counted once. */
    int pipelines_per_thread = (iterations + 1) / 3;
    r = POOL_CMD(pool, "GET", "threads:total");
    char want[32];
    snprintf(want, sizeof want, "%d", THREADS * pipelines_per_thread);
    CHECK_STRING(r, want);
    redpool_reply_free(r);

    /* The server's view: at most 4 connections carry the pool's name. */
    r = POOL_CMD(pool, "CLIENT", "LIST");
    CHECK_TYPE(r, REDPOOL_REPLY_STRING);
    char needle[96];
    snprintf(needle, sizeof needle, " name=%s ", name);
    int named = 0;
    for (const char *at = r->str; (at = strstr(at, needle)) != NULL; at++) named++;
    CHECKF(named >= 1 && named <= MAX_CONNECTIONS, "%d connections named %s:\n%s", named, name,
           r->str);
    redpool_reply_free(r);

    /* The pool's view. */
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.max_connections, MAX_CONNECTIONS);
    CHECK(st.open <= MAX_CONNECTIONS);
    CHECK(st.connections_created <= MAX_CONNECTIONS);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.waiting, 0);
    CHECK_EQ_INT(st.acquire_timeouts, 0);
    CHECK_EQ_INT(st.errors, 0);
    CHECK(st.acquires >= (uint64_t)THREADS * (uint64_t)iterations);
    printf("threads: %d threads x %d iterations in %.0f ms; %" PRIu64 " acquires, %" PRIu64
           " connections, max wait %" PRIu64 " us\n",
           THREADS, iterations, took, st.acquires, st.connections_created, st.wait_time_max_us);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(p);
    let_background_threads_finish();
    return finish("threads");
}
