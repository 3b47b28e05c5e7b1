/*
 * observe.c: what a C program can see of a pool. redpool_pool_stats and redpool_pool_health with
 * the struct_size rules (an older, smaller struct; a newer, bigger one), health of a live and of a
 * dead server, and events through redpool_pool_subscribe (created / closed with reasons, pool
 * exhausted, acquire timed out, health changed, userdata passed back, unsubscribe stops them).
 *
 * Environment: REDIS_URL, REDPOOL_TEST_DEAD_PORT.
 */
#include "check.h"

#include <pthread.h>
#include <stddef.h>

static redpool_pool *pool_with(const char *url, const char *query) {
    char buf[256];
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, query), &pool));
    return pool;
}

/* ---- stats -------------------------------------------------------------------------------- */

static void test_stats(const char *url) {
    redpool_pool *pool = pool_with(url, "/?max_connections=5&min_idle=2");

    redpool_stats st;
    memset(&st, 0xab, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.struct_size, sizeof st);
    CHECK_EQ_INT(st.max_connections, 5);
    CHECK_EQ_INT(st.min_idle, 2);
    CHECK(st.open <= 5);
    CHECK_EQ_INT(st.in_use, 0);
    CHECK_EQ_INT(st.waiting, 0);
    CHECK_EQ_INT(st.errors, 0);
    CHECK_EQ_INT(st.breaker_state, REDPOOL_BREAKER_CLOSED);

    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_reply *r = CONN_CMD(c, "PING");
    redpool_reply_free(r);
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.in_use, 1);
    CHECK(st.acquires >= 1);
    CHECK(st.commands >= 1);
    CHECK(st.connections_created >= 1);
    CHECK_EQ_INT(st.open, st.idle + st.in_use + st.connecting);
    redpool_conn_release(&c);

    /* An older program: its struct ends after `in_use`. Nothing beyond is written. */
    union {
        redpool_stats s;
        unsigned char bytes[sizeof(redpool_stats)];
    } old;
    size_t old_size = offsetof(redpool_stats, in_use) + sizeof(uint64_t);
    memset(&old, 0xab, sizeof old);
    old.s.struct_size = old_size;
    CHECK_OK(redpool_pool_stats(pool, &old.s));
    CHECK_EQ_INT(old.s.struct_size, old_size);
    CHECK_EQ_INT(old.s.max_connections, 5);
    CHECK_EQ_INT(old.s.in_use, 0);
    for (size_t i = old_size; i < sizeof old; i++)
        CHECKF(old.bytes[i] == 0xab, "byte %zu beyond struct_size %zu was written", i, old_size);

    /* A newer program: a bigger struct. The known part is filled, the rest left alone. */
    struct {
        redpool_stats s;
        uint64_t future[4];
    } newer;
    memset(&newer, 0xab, sizeof newer);
    newer.s.struct_size = sizeof newer;
    CHECK_OK(redpool_pool_stats(pool, &newer.s));
    CHECK_EQ_INT(newer.s.max_connections, 5);
    CHECK_EQ_INT(newer.s.breaker_state, REDPOOL_BREAKER_CLOSED);
    for (int i = 0; i < 4; i++) CHECK(newer.future[i] == UINT64_C(0xabababababababab));

    /* struct_size that cannot even hold struct_size: refused. */
    memset(&st, 0, sizeof st);
    CHECK_FAILS(redpool_pool_stats(pool, &st), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_HAS("struct_size");

    CHECK_OK(redpool_pool_close(pool, 1000));
    CHECK_OK(redpool_pool_stats(pool, &newer.s));
    CHECK_EQ_INT(newer.s.open, 0);
    CHECK(newer.s.closed_pool_closed >= 1);
    redpool_pool_free(pool);
}

/* ---- health ------------------------------------------------------------------------------- */

static void test_health(const char *url) {
    /* Latency thresholds far above what a loaded machine under valgrind can produce. */
    redpool_pool *pool =
        pool_with(url, "/?health_degraded_latency=5s&health_unhealthy_latency=10s");
    redpool_health h;
    memset(&h, 0xab, sizeof h);
    h.struct_size = sizeof h;
    CHECK_OK(redpool_pool_health(pool, &h));
    CHECK_EQ_INT(h.struct_size, sizeof h);
    CHECKF(h.status == REDPOOL_HEALTH_HEALTHY, "status %u: %.255s", (unsigned)h.status, h.summary);
    CHECK_EQ_INT(h.breaker_state, REDPOOL_BREAKER_CLOSED);
    CHECK(h.ping_latency_us >= 0);
    CHECK_EQ_INT(h.consecutive_failures, 0);
    CHECK(h.connected_clients >= 1);
    CHECK(h.rejected_connections >= 0);
    CHECK(memchr(h.summary, '\0', sizeof h.summary) != NULL);

    /* An older, smaller struct: only what fits is written. */
    union {
        redpool_health h;
        unsigned char bytes[sizeof(redpool_health)];
    } old;
    size_t old_size = offsetof(redpool_health, ping_latency_us) + sizeof(int64_t);
    memset(&old, 0xab, sizeof old);
    old.h.struct_size = old_size;
    CHECK_OK(redpool_pool_health(pool, &old.h));
    CHECK_EQ_INT(old.h.struct_size, old_size);
    CHECK(old.h.ping_latency_us >= 0);
    for (size_t i = old_size; i < sizeof old; i++)
        CHECKF(old.bytes[i] == 0xab, "byte %zu beyond struct_size %zu was written", i, old_size);
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);

    /* A dead server: a report, not a failure. */
    char dead[128];
    snprintf(dead, sizeof dead, "redis://127.0.0.1:%s/?retries=0&acquire_timeout=1s",
             env_required("REDPOOL_TEST_DEAD_PORT"));
    CHECK_OK(redpool_pool_from_url(dead, &pool));
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    CHECK_OK(redpool_pool_health(pool, &h));
    CHECK_EQ_INT(h.status, REDPOOL_HEALTH_UNHEALTHY);
    CHECK_EQ_INT(h.ping_latency_us, -1);
    CHECK_EQ_INT(h.connected_clients, -1);
    CHECKF(h.summary[0] != '\0', "an unhealthy report without a summary");
    CHECK(memchr(h.summary, '\0', sizeof h.summary) != NULL);
    CHECK_OK(redpool_pool_close(pool, 0));
    redpool_pool_free(pool);
}

/* ---- events ------------------------------------------------------------------------------- */

enum { MAX_IDS = 64 };

struct recorder {
    pthread_mutex_t lock;
    unsigned created, closed, exhausted, timed_out, health_changed, other;
    uint64_t created_ids[MAX_IDS];
    uint64_t closed_ids[MAX_IDS];
    char closed_reasons[MAX_IDS][32];
    uint64_t exhausted_max;
    uint64_t timed_out_waited_us;
    uint32_t health_from, health_to;
    bool bad_userdata;
};

static struct recorder *expected_userdata;

static void record_event(void *userdata, const redpool_event *e) {
    struct recorder *rec = userdata;
    if (rec != expected_userdata) {
        /* Cannot CHECK here safely on every thread; remember it. */
        expected_userdata->bad_userdata = true;
        return;
    }
    pthread_mutex_lock(&rec->lock);
    switch (e->type) {
    case REDPOOL_EVENT_CONNECTION_CREATED:
        if (rec->created < MAX_IDS) rec->created_ids[rec->created] = e->connection_id;
        rec->created++;
        break;
    case REDPOOL_EVENT_CONNECTION_CLOSED:
        if (rec->closed < MAX_IDS) {
            rec->closed_ids[rec->closed] = e->connection_id;
            snprintf(rec->closed_reasons[rec->closed], sizeof rec->closed_reasons[0], "%s",
                     e->close_reason ? e->close_reason : "(null)");
        }
        rec->closed++;
        break;
    case REDPOOL_EVENT_POOL_EXHAUSTED:
        rec->exhausted++;
        rec->exhausted_max = e->max_connections;
        break;
    case REDPOOL_EVENT_ACQUIRE_TIMED_OUT:
        rec->timed_out++;
        rec->timed_out_waited_us = e->waited_us;
        break;
    case REDPOOL_EVENT_HEALTH_CHANGED:
        rec->health_changed++;
        rec->health_from = e->health_from;
        rec->health_to = e->health_to;
        break;
    default:
        rec->other++;
        break;
    }
    pthread_mutex_unlock(&rec->lock);
}

static struct recorder snapshot(struct recorder *rec) {
    pthread_mutex_lock(&rec->lock);
    struct recorder copy = *rec;
    pthread_mutex_unlock(&rec->lock);
    return copy;
}

static bool was_created(const struct recorder *rec, uint64_t id) {
    for (unsigned i = 0; i < rec->created && i < MAX_IDS; i++)
        if (rec->created_ids[i] == id) return true;
    return false;
}

static void test_events(const char *url) {
    struct recorder *rec = calloc(1, sizeof *rec);
    CHECK(rec != NULL);
    CHECK(pthread_mutex_init(&rec->lock, NULL) == 0);
    expected_userdata = rec;

    redpool_pool *pool = pool_with(url, "/?max_connections=2&min_idle=0&health_degraded_latency=5s"
                                        "&health_unhealthy_latency=10s");
    uint64_t id = 0;
    CHECK_OK(redpool_pool_subscribe(pool, record_event, rec, &id));
    CHECK(id != 0);

    /* Two connections: one held, one for a one-shot command. */
    redpool_conn *a = NULL, *b = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &a));
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &b));
    struct recorder s = snapshot(rec);
    CHECK_EQ_INT(s.created, 2);
    CHECK(s.created_ids[0] != 0 && s.created_ids[1] != 0);
    CHECK(s.created_ids[0] != s.created_ids[1]);

    /* At the cap: a caller queues (POOL_EXHAUSTED) and gives up (ACQUIRE_TIMED_OUT). */
    redpool_conn *c = NULL;
    CHECK_FAILS(redpool_pool_acquire(pool, 100, &c), REDPOOL_STATUS_POOL_EXHAUSTED);
    s = snapshot(rec);
    CHECK_EQ_INT(s.exhausted, 1);
    CHECK_EQ_INT(s.exhausted_max, 2);
    CHECK_EQ_INT(s.timed_out, 1);
    CHECKF(s.timed_out_waited_us >= 95000, "waited_us %" PRIu64, s.timed_out_waited_us);

    /* Discarded: CLOSED with reason "discarded"; released: no event. */
    redpool_conn_discard(&a);
    redpool_conn_release(&b);
    s = snapshot(rec);
    CHECK_EQ_INT(s.closed, 1);
    CHECK_STREQ(s.closed_reasons[0], "discarded");
    CHECK(was_created(&s, s.closed_ids[0]));

    /* The first health check changes the status from UNKNOWN. */
    redpool_health h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    CHECK_OK(redpool_pool_health(pool, &h));
    s = snapshot(rec);
    CHECK_EQ_INT(s.health_changed, 1);
    CHECK_EQ_INT(s.health_from, REDPOOL_HEALTH_UNKNOWN);
    CHECK_EQ_INT(s.health_to, h.status);
    CHECK_OK(redpool_pool_health(pool, &h));
    CHECK_EQ_INT(snapshot(rec).health_changed, 1); /* unchanged: no new event */

    /* Unsubscribed: nothing more arrives. */
    CHECK_OK(redpool_pool_unsubscribe(pool, id));
    s = snapshot(rec);
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &a));
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &b)); /* opens a new one */
    redpool_conn_discard(&a);
    redpool_conn_discard(&b);
    struct recorder after = snapshot(rec);
    CHECK_EQ_INT(after.created, s.created);
    CHECK_EQ_INT(after.closed, s.closed);

    /* Subscribed again: close() reports every remaining connection as "pool_closed". */
    CHECK_OK(redpool_pool_subscribe(pool, record_event, rec, &id));
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &a));
    redpool_conn_release(&a);
    s = snapshot(rec);
    CHECK_OK(redpool_pool_close(pool, 1000));
    after = snapshot(rec);
    CHECK_EQ_INT(after.closed, s.closed + 1);
    CHECK_STREQ(after.closed_reasons[s.closed], "pool_closed");
    CHECK_EQ_INT(after.other, 0);
    CHECK(!after.bad_userdata);
    CHECK_OK(redpool_pool_unsubscribe(pool, id));
    redpool_pool_free(pool);

    pthread_mutex_destroy(&rec->lock);
    free(rec);
}

/* ---- unsubscribe vs. an event being delivered ---------------------------------------------- */

/*
 * The header: unsubscribe "removes a subscription: once it returns, the callback is not called
 * again", and called outside any event callback it also waits for that callback's calls running on
 * other threads, "so its userdata may be freed as soon as it returns". Two subscribers; an event is
 * being delivered on another thread and the first subscriber is still running when the second one
 * is unsubscribed: the second must not be called afterwards (with userdata the program may already
 * have freed).
 */
struct gate {
    _Atomic int armed, in_first, unsubscribed;
};

struct victim {
    _Atomic int dead, called_after_unsubscribe;
};

static void first_subscriber(void *userdata, const redpool_event *e) {
    struct gate *g = userdata;
    if (e->type != REDPOOL_EVENT_CONNECTION_CREATED || !g->armed) return;
    g->armed = 0;
    g->in_first = 1;
    double deadline = now_ms() + 5000;
    while (!g->unsubscribed && now_ms() < deadline) sleep_ms(1);
}

static void second_subscriber(void *userdata, const redpool_event *e) {
    struct victim *v = userdata;
    (void)e;
    if (v->dead) v->called_after_unsubscribe = 1;
}

static void *open_a_connection(void *arg) {
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(arg, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_conn_discard(&c);
    return NULL;
}

static void test_unsubscribe_during_delivery(const char *url) {
    redpool_pool *pool = pool_with(url, "/?min_idle=0");
    struct gate g = {0, 0, 0};
    struct victim v = {0, 0};
    uint64_t first = 0, second = 0;
    CHECK_OK(redpool_pool_subscribe(pool, first_subscriber, &g, &first));
    CHECK_OK(redpool_pool_subscribe(pool, second_subscriber, &v, &second));

    g.armed = 1;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, open_a_connection, pool) == 0);
    double deadline = now_ms() + 10000;
    while (!g.in_first && now_ms() < deadline) sleep_ms(1);
    CHECK(g.in_first);
    CHECK_OK(redpool_pool_unsubscribe(pool, second));
    v.dead = 1; /* a real program could free the userdata now */
    g.unsubscribed = 1;
    CHECK(pthread_join(t, NULL) == 0);
    /* A callback unsubscribed during a delivery is skipped for the rest of that delivery. */
    CHECKF(!v.called_after_unsubscribe,
           "a callback ran after redpool_pool_unsubscribe had returned (its userdata could "
           "already be freed)");
    CHECK_OK(redpool_pool_unsubscribe(pool, first));
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
}

int main(void) {
    const char *url = url_from_env();
    test_stats(url);
    test_health(url);
    test_events(url);
    test_unsubscribe_during_delivery(url);
    let_background_threads_finish();
    return finish("observe");
}
