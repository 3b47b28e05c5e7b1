/*
 * handles.c: C handles that cannot dangle.
 *
 * - A call holds its pool for its whole duration: an event callback that frees the last handle
 *   of the pool whose call raised the event does not pull the pool from under that call (under
 *   valgrind, a use-after-free would be reported).
 * - redpool_pool_subscribe and redpool_pool_unsubscribe work from inside an event callback (of
 *   the same pool): no deadlock, the new subscription gets the later events, a callback can
 *   unsubscribe itself (one-shot) or another one, also while events are raised on many threads at
 *   once and callbacks unsubscribe each other.
 * - Outside callbacks, redpool_pool_unsubscribe waits for a call of that callback running on
 *   another thread, so its userdata may be freed when it returns.
 * - In a forked child, the inherited subscriptions are called, and subscribing and unsubscribing
 *   work (nothing waits for a call that ran on one of the parent's threads).
 * - redpool_reply_free on an element of a tree (at any depth) is refused with
 *   REDPOOL_STATUS_INVALID_ARGUMENT and leaves the tree intact; on the root it frees the tree.
 *
 * A hang (a deadlock) ends the program through alarm(). Environment: REDIS_URL.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>
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

/* Opens a new connection (ConnectionCreated) and closes it (ConnectionClosed). */
static void churn(redpool_pool *pool) {
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_conn_discard(&c);
}

/* ---- a callback frees the last handle of its pool ------------------------------------------ */

struct freeing {
    redpool_pool *pool;
    atomic_int freed;
};

static void free_pool_on_connect(void *userdata, const redpool_event *e) {
    struct freeing *f = userdata;
    if (e->type == REDPOOL_EVENT_CONNECTION_CREATED && atomic_exchange(&f->freed, 1) == 0)
        redpool_pool_free(f->pool);
}

static void test_callback_frees_the_last_handle(const char *url) {
    /* A command: the connection it opens raises the event inside the call. */
    struct freeing f;
    f.pool = pool_with(url, "/?min_idle=0");
    atomic_init(&f.freed, 0);
    uint64_t id = 0;
    CHECK_OK(redpool_pool_subscribe(f.pool, free_pool_on_connect, &f, &id));
    args_t ping = args_of("PING", NULL);
    redpool_reply *r = NULL;
    CHECK_OK(redpool_pool_command(f.pool, ping.argc, ping.argv, NULL, &r));
    CHECK(atomic_load(&f.freed));
    CHECK_STATUS_REPLY(r, "PONG");
    CHECK_OK(redpool_reply_free(r));

    /* A pipeline, then a checkout: the same. */
    f.pool = pool_with(url, "/?min_idle=0");
    atomic_store(&f.freed, 0);
    CHECK_OK(redpool_pool_subscribe(f.pool, free_pool_on_connect, &f, &id));
    args_t set = args_of("SET", "handles:k", "v", NULL), get = args_of("GET", "handles:k", NULL);
    redpool_cmd cmds[2] = {cmd_of(&set), cmd_of(&get)};
    CHECK_OK(redpool_pool_pipeline(f.pool, 2, cmds, &r));
    CHECK(atomic_load(&f.freed));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 2);
    CHECK_STRING(r->element[1], "v");
    CHECK_OK(redpool_reply_free(r));

    f.pool = pool_with(url, "/?min_idle=0");
    atomic_store(&f.freed, 0);
    CHECK_OK(redpool_pool_subscribe(f.pool, free_pool_on_connect, &f, &id));
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(f.pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK(atomic_load(&f.freed));
    /* The connection keeps its pool alive: it still works, and releasing it ends the pool. */
    r = CONN_CMD(c, "GET", "handles:k");
    CHECK_STRING(r, "v");
    CHECK_OK(redpool_reply_free(r));
    redpool_conn_release(&c);
    CHECK(c == NULL);
}

/* ---- subscribe and unsubscribe from inside callbacks --------------------------------------- */

struct nesting {
    redpool_pool *pool;
    atomic_int outer_calls, subscribed, subscribe_status;
    uint64_t inner_id;
    atomic_int inner_calls, inner_after_unsubscribe, unsubscribed, unsubscribe_status;
};

/* Unsubscribes itself on its second call. */
static void inner_subscriber(void *userdata, const redpool_event *e) {
    struct nesting *n = userdata;
    (void)e;
    if (atomic_load(&n->unsubscribed)) atomic_fetch_add(&n->inner_after_unsubscribe, 1);
    if (atomic_fetch_add(&n->inner_calls, 1) + 1 == 2) {
        atomic_store(&n->unsubscribe_status,
                     (int)redpool_pool_unsubscribe(n->pool, n->inner_id));
        atomic_store(&n->unsubscribed, 1);
    }
}

/* Subscribes `inner_subscriber` on its first ConnectionCreated. */
static void outer_subscriber(void *userdata, const redpool_event *e) {
    struct nesting *n = userdata;
    atomic_fetch_add(&n->outer_calls, 1);
    if (e->type == REDPOOL_EVENT_CONNECTION_CREATED && atomic_exchange(&n->subscribed, 1) == 0) {
        uint64_t id = 0;
        int st = (int)redpool_pool_subscribe(n->pool, inner_subscriber, n, &id);
        n->inner_id = id;
        atomic_store(&n->subscribe_status, st);
    }
}

static void test_subscribe_and_unsubscribe_inside_callbacks(const char *url) {
    struct nesting n;
    memset(&n, 0, sizeof n);
    n.pool = pool_with(url, "/?min_idle=0");
    uint64_t outer = 0;
    CHECK_OK(redpool_pool_subscribe(n.pool, outer_subscriber, &n, &outer));

    churn(n.pool); /* created: outer subscribes inner; closed: inner's first call */
    CHECK_EQ_INT(atomic_load(&n.subscribed), 1);
    CHECK_EQ_INT(atomic_load(&n.subscribe_status), REDPOOL_STATUS_OK);
    CHECK(n.inner_id != 0 && n.inner_id != outer);
    CHECK_EQ_INT(atomic_load(&n.inner_calls), 1);

    churn(n.pool); /* created: inner's second call, where it unsubscribes itself */
    CHECK_EQ_INT(atomic_load(&n.unsubscribed), 1);
    CHECK_EQ_INT(atomic_load(&n.unsubscribe_status), REDPOOL_STATUS_OK);
    for (int i = 0; i < 5; i++) churn(n.pool);
    CHECK_EQ_INT(atomic_load(&n.inner_calls), 2);
    CHECK_EQ_INT(atomic_load(&n.inner_after_unsubscribe), 0);
    CHECK(atomic_load(&n.outer_calls) >= 14);

    /* Its id is gone; the outer one is still there and goes now. */
    CHECK_FAILS(redpool_pool_unsubscribe(n.pool, n.inner_id), REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_OK(redpool_pool_unsubscribe(n.pool, outer));
    int before = atomic_load(&n.outer_calls);
    churn(n.pool);
    CHECK_EQ_INT(atomic_load(&n.outer_calls), before);
    close_and_free(n.pool);
}

/*
 * A ring of one-shot subscriptions, each unsubscribing itself and the next one on its first
 * call, while 8 threads raise events at once: callbacks unsubscribe each other concurrently on
 * different threads (a deadlock if unsubscribing inside a callback waited for the others).
 */
#define RING 4

struct ring {
    redpool_pool *pool;
    uint64_t ids[RING];
    atomic_int claimed[RING];
    atomic_int calls[RING];
    atomic_int bad_status;
};

struct ring_member {
    struct ring *ring;
    int index;
};

static void ring_subscriber(void *userdata, const redpool_event *e) {
    struct ring_member *m = userdata;
    struct ring *r = m->ring;
    (void)e;
    atomic_fetch_add(&r->calls[m->index], 1);
    if (atomic_exchange(&r->claimed[m->index], 1) != 0) return;
    int next = (m->index + 1) % RING;
    uint32_t mine = (uint32_t)redpool_pool_unsubscribe(r->pool, r->ids[m->index]);
    uint32_t theirs = (uint32_t)redpool_pool_unsubscribe(r->pool, r->ids[next]);
    /* Each is removed once: by itself or by its neighbour, whichever came first. */
    if ((mine != REDPOOL_STATUS_OK && mine != REDPOOL_STATUS_INVALID_ARGUMENT) ||
        (theirs != REDPOOL_STATUS_OK && theirs != REDPOOL_STATUS_INVALID_ARGUMENT))
        atomic_fetch_add(&r->bad_status, 1);
}

static void *churn_thread(void *arg) {
    for (int i = 0; i < 10; i++) churn(arg);
    return NULL;
}

static void test_callbacks_unsubscribing_each_other_on_many_threads(const char *url) {
    struct ring r;
    memset(&r, 0, sizeof r);
    r.pool = pool_with(url, "/?min_idle=0&max_connections=16");
    struct ring_member members[RING];
    for (int i = 0; i < RING; i++) {
        members[i].ring = &r;
        members[i].index = i;
        CHECK_OK(redpool_pool_subscribe(r.pool, ring_subscriber, &members[i], &r.ids[i]));
    }
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) CHECK(pthread_create(&threads[i], NULL, churn_thread, r.pool) == 0);
    for (int i = 0; i < 8; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK_EQ_INT(atomic_load(&r.bad_status), 0);

    /* Every one of them is gone: no call from now on, and no id left to remove. */
    int calls[RING];
    for (int i = 0; i < RING; i++) {
        calls[i] = atomic_load(&r.calls[i]);
        CHECK_FAILS(redpool_pool_unsubscribe(r.pool, r.ids[i]), REDPOOL_STATUS_INVALID_ARGUMENT);
    }
    for (int i = 0; i < 5; i++) churn(r.pool);
    for (int i = 0; i < RING; i++) CHECK_EQ_INT(atomic_load(&r.calls[i]), calls[i]);
    close_and_free(r.pool);
}

/* ---- unsubscribe outside callbacks waits for a running call -------------------------------- */

struct slow {
    atomic_int armed, entered, release, returned;
};

static void slow_subscriber(void *userdata, const redpool_event *e) {
    struct slow *s = userdata;
    if (e->type != REDPOOL_EVENT_CONNECTION_CREATED || !atomic_exchange(&s->armed, 0)) return;
    atomic_store(&s->entered, 1);
    double deadline = now_ms() + 10000;
    while (!atomic_load(&s->release) && now_ms() < deadline) sleep_ms(1);
    sleep_ms(50);
    atomic_store(&s->returned, 1);
}

static void *churn_once(void *arg) {
    churn(arg);
    return NULL;
}

static void *release_later(void *arg) {
    struct slow *s = arg;
    sleep_ms(200);
    atomic_store(&s->release, 1);
    return NULL;
}

static void test_unsubscribe_waits_for_a_running_call(const char *url) {
    redpool_pool *pool = pool_with(url, "/?min_idle=0");
    struct slow s;
    memset(&s, 0, sizeof s);
    atomic_store(&s.armed, 1);
    uint64_t id = 0;
    CHECK_OK(redpool_pool_subscribe(pool, slow_subscriber, &s, &id));
    pthread_t raiser, releaser;
    CHECK(pthread_create(&raiser, NULL, churn_once, pool) == 0);
    double deadline = now_ms() + 10000;
    while (!atomic_load(&s.entered) && now_ms() < deadline) sleep_ms(1);
    CHECK(atomic_load(&s.entered));
    CHECK(pthread_create(&releaser, NULL, release_later, &s) == 0);
    CHECK_OK(redpool_pool_unsubscribe(pool, id));
    /* The callback had returned before unsubscribe did: its userdata may be freed now. */
    CHECK(atomic_load(&s.returned));
    CHECK(pthread_join(raiser, NULL) == 0);
    CHECK(pthread_join(releaser, NULL) == 0);
    close_and_free(pool);
}

/* ---- subscriptions in a forked child ------------------------------------------------------ */

static void count_event(void *userdata, const redpool_event *e) {
    (void)e;
    atomic_fetch_add((atomic_int *)userdata, 1);
}

static void test_subscriptions_in_a_forked_child(const char *url) {
    redpool_pool *pool = pool_with(url, "/?min_idle=0");
    atomic_int parents;
    atomic_init(&parents, 0);
    uint64_t id = 0;
    CHECK_OK(redpool_pool_subscribe(pool, count_event, &parents, &id));
    churn(pool);
    CHECK(atomic_load(&parents) >= 2);

    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* The inherited subscription is called for the child's own events. */
        int before = atomic_load(&parents);
        churn(pool);
        CHECK(atomic_load(&parents) >= before + 2);
        atomic_int childs;
        atomic_init(&childs, 0);
        uint64_t mine = 0;
        CHECK_OK(redpool_pool_subscribe(pool, count_event, &childs, &mine));
        churn(pool);
        CHECK(atomic_load(&childs) >= 2);
        CHECK_OK(redpool_pool_unsubscribe(pool, mine));
        CHECK_OK(redpool_pool_unsubscribe(pool, id));
        before = atomic_load(&parents);
        int childs_before = atomic_load(&childs);
        churn(pool);
        CHECK_EQ_INT(atomic_load(&parents), before);
        CHECK_EQ_INT(atomic_load(&childs), childs_before);
        redpool_pool_close(pool, 0);
        redpool_pool_free(pool);
        fflush(stdout);
        fflush(stderr);
        /* exec, not exit: see child_exit in fork.c (no meaningless leak report in the child). */
        execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed: status %d", status);
    /* The parent's subscription is still there. */
    int before = atomic_load(&parents);
    churn(pool);
    CHECK(atomic_load(&parents) >= before + 2);
    CHECK_OK(redpool_pool_unsubscribe(pool, id));
    close_and_free(pool);
}

/* ---- freeing an element of a reply tree --------------------------------------------------- */

static void test_freeing_an_element_is_refused(const char *url) {
    redpool_pool *pool = pool_with(url, "/?min_idle=0");
    redpool_reply_free(POOL_CMD(pool, "DEL", "handles:list"));
    redpool_reply_free(POOL_CMD(pool, "RPUSH", "handles:list", "a", "b", "c"));

    /* An ARRAY of [STATUS, ARRAY [a, b, c], INTEGER]. */
    args_t ping = args_of("PING", NULL), range = args_of("LRANGE", "handles:list", "0", "-1", NULL),
           len = args_of("LLEN", "handles:list", NULL);
    redpool_cmd cmds[3] = {cmd_of(&ping), cmd_of(&range), cmd_of(&len)};
    redpool_reply *tree = NULL;
    CHECK_OK(redpool_pool_pipeline(pool, 3, cmds, &tree));
    CHECK_TYPE(tree, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(tree->elements, 3);

    /* Every element, at every depth, is refused, and the tree stays intact. */
    for (size_t i = 0; i < tree->elements; i++) {
        CHECK_FAILS(redpool_reply_free(tree->element[i]), REDPOOL_STATUS_INVALID_ARGUMENT);
        CHECK_LAST_ERROR_HAS("not the root");
    }
    for (size_t j = 0; j < tree->element[1]->elements; j++)
        CHECK_FAILS(redpool_reply_free(tree->element[1]->element[j]),
                    REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS_REPLY(tree->element[0], "PONG");
    CHECK_TYPE(tree->element[1], REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(tree->element[1]->elements, 3);
    CHECK_STRING(tree->element[1]->element[0], "a");
    CHECK_STRING(tree->element[1]->element[2], "c");
    CHECK_INTEGER(tree->element[2], 3);

    /* The root frees the whole tree; NULL is accepted. A free that succeeds leaves the last
     * error alone (cleanup between a failed call and reading its message). */
    CHECK_OK(redpool_reply_free(tree));
    CHECK_OK(redpool_reply_free(NULL));
    CHECK_LAST_ERROR_HAS("not the root");

    /* A reply without elements is its own root. */
    redpool_reply *one = POOL_CMD(pool, "GET", "handles:nothing");
    CHECK_TYPE(one, REDPOOL_REPLY_NIL);
    CHECK_OK(redpool_reply_free(one));

    /* A large tree (one allocation): its last element is refused too. */
    redpool_reply *big = POOL_CMD(pool, "LRANGE", "handles:list", "0", "-1");
    CHECK_FAILS(redpool_reply_free(big->element[big->elements - 1]),
                REDPOOL_STATUS_INVALID_ARGUMENT);
    CHECK_OK(redpool_reply_free(big));
    redpool_reply_free(POOL_CMD(pool, "DEL", "handles:list"));
    close_and_free(pool);
}

int main(void) {
    const char *url = url_from_env();
    alarm(150); /* a deadlock fails the program instead of hanging it */
    test_callback_frees_the_last_handle(url);
    test_subscribe_and_unsubscribe_inside_callbacks(url);
    test_callbacks_unsubscribing_each_other_on_many_threads(url);
    test_unsubscribe_waits_for_a_running_call(url);
    test_subscriptions_in_a_forked_child(url);
    test_freeing_an_element_is_refused(url);
    let_background_threads_finish();
    return finish("handles");
}
