/*
 * alignment.c: reply integrity through the C API, generated (the C twin of tests/alignment.rs).
 * Every command of the real server's COMMAND table (subcommands included, a few NOT_SENT ones
 * excepted), read through redpool itself, is sent with arguments that satisfy its arity as a
 * one-shot call (redpool_pool_command), inside a pipeline (redpool_pool_pipeline) and inside a
 * transaction (redpool_pool_transaction), from 8 pthreads over 2 connections, interleaved with
 * probes whose replies are known (ECHO <token>, SET/GET of a key no other call touches). Every
 * probe must get its own reply: a reply left unread by any command would shift every later reply
 * on its connection, and a probe would see it.
 *
 * Wrong: a probe reply other than its own, a probe call that fails (except by a timeout, see
 * below), a REDPOOL_STATUS_PROTOCOL from any call, a NIL transaction (no WATCH was set) and a
 * REDPOOL_STATUS_PANIC (a bug inside redpool). Fine: other failures of generated calls (the pool
 * refuses session commands, QUIT closes its connection, a blocking command may time out) and
 * ERROR replies.
 *
 * A probe that times out (socket_timeout, 30 s here) got no reply at all, so no one else's:
 * the server was busy for that long. PFSELFTEST takes about 1 s of the server's single thread,
 * and a transaction of 3 copies holds every connection's replies for 3 s, more on a loaded
 * machine. Such probes are listed and not checked; the server's slow log is printed after any
 * timeout, and a run fails when too few probes were checked.
 *
 * The cases come from a seed printed at the start (REDPOOL_SEED=<n> replays a run; the thread
 * interleaving is not replayed).
 *
 * Under valgrind (tests/c_abi.rs runs every program natively, then under valgrind) the program
 * takes about 40 s on 2 cores (about 15 s natively, most of it blocking commands waiting): well
 * within the harness's 180 s per run, so the work is the same in both runs.
 *
 * Environment: REDIS_URL; REDPOOL_SEED (optional).
 */
#include "check.h"

#include <ctype.h>
#include <pthread.h>

enum {
    THREADS = 8,
    CONNECTIONS = 2,
    MAX_WORDS = 4,  /* "container|sub": 2 words; room for deeper names */
    MAX_ARGS = 32,  /* |arity| + 2 at most */
    ARG_LEN = 64,   /* "gen:<u64>:<n>", "probe-<t>-<u64>" */
    MAX_SLOTS = 8,  /* a batch: 3 copies, 3 probes before them, 1 probe at the end */
    KEEP_WRONG = 20,
    KEEP_NOTES = 10,
    STATUSES = 16,
};

/*
 * Commands the generator never sends, each for a reason outside the client's control: they stop
 * the server, wipe or swap the probes' data, or make the server reach another address.
 */
static const char *const NOT_SENT[] = {
    "shutdown",  /* stops the server under test */
    "flushall",  /* deletes the probes' keys */
    "flushdb",   /* deletes the probes' keys */
    "swapdb",    /* swaps the probes' keys away */
    "replicaof", /* makes the server a replica of another address */
    "slaveof",   /* makes the server a replica of another address */
    "failover",  /* hands the server's role to another address */
    "migrate",   /* connects the server to another address */
};

/* A command of the server's table: its name (and subcommand), arity and whether it blocks. */
typedef struct {
    char *words[MAX_WORDS];
    size_t nwords;
    long long arity;
    bool blocking;
} spec_t;

static spec_t *specs;
static size_t nspecs, specs_cap;
static uint64_t seed;
static const redpool_pool *pool;

/* ---- xorshift64*: small, seedable, the same as tests/alignment.rs ------------------------ */

typedef struct {
    uint64_t state;
} rng_t;

static rng_t rng_new(uint64_t s) {
    rng_t r = {s != 0 ? s : 1}; /* 0 is xorshift's fixed point */
    return r;
}

static uint64_t rng_next(rng_t *r) {
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * UINT64_C(0x2545F4914F6CDD1D);
}

static size_t rng_below(rng_t *r, size_t n) {
    return (size_t)(rng_next(r) % (uint64_t)n);
}

static uint64_t seed_from_env(void) {
    const char *text = getenv("REDPOOL_SEED");
    uint64_t s = 0;
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        unsigned long long parsed = strtoull(text, &end, 10);
        CHECKF(end != NULL && *end == '\0', "REDPOOL_SEED=%s is not a number", text);
        s = (uint64_t)parsed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
    }
    if (s == 0) s = 1;
    fprintf(stderr, "alignment: seed %" PRIu64 " (replay with REDPOOL_SEED=%" PRIu64 ")\n", s, s);
    return s;
}

/* ---- the command table ------------------------------------------------------------------- */

static bool not_sent(const char *name) {
    for (size_t i = 0; i < sizeof NOT_SENT / sizeof NOT_SENT[0]; i++)
        if (strcmp(NOT_SENT[i], name) == 0) return true;
    return false;
}

static const redpool_reply *field(const redpool_reply *entry, size_t i) {
    return i < entry->elements ? entry->element[i] : NULL;
}

/* One entry of the COMMAND reply (and, first, its subcommands). */
static void collect(const redpool_reply *entry) {
    CHECK_TYPE(entry, REDPOOL_REPLY_ARRAY);
    CHECKF(entry->elements >= 3, "a COMMAND entry with %zu fields", entry->elements);
    const redpool_reply *name = field(entry, 0), *arity = field(entry, 1),
                        *flags = field(entry, 2), *subs = field(entry, 9);
    CHECKF(name->type == REDPOOL_REPLY_STRING || name->type == REDPOOL_REPLY_STATUS,
           "a command name of type %s", reply_type_name((int)name->type));
    CHECK_TYPE(arity, REDPOOL_REPLY_INTEGER);
    size_t nsubs = 0;
    if (subs != NULL && subs->type == REDPOOL_REPLY_ARRAY) {
        nsubs = subs->elements;
        for (size_t i = 0; i < nsubs; i++) collect(subs->element[i]);
    }
    spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.arity = arity->integer;
    if (flags != NULL && (flags->type == REDPOOL_REPLY_ARRAY || flags->type == REDPOOL_REPLY_SET))
        for (size_t i = 0; i < flags->elements; i++)
            if (flags->element[i]->str != NULL && strcmp(flags->element[i]->str, "blocking") == 0)
                spec.blocking = true;
    /* "container|sub" -> words, lowercased. */
    char *lower = strdup(name->str);
    CHECK(lower != NULL);
    for (char *c = lower; *c != '\0'; c++) *c = (char)tolower((unsigned char)*c);
    for (char *save = NULL, *w = strtok_r(lower, "|", &save); w != NULL;
         w = strtok_r(NULL, "|", &save)) {
        CHECKF(spec.nwords < MAX_WORDS, "command name %s has too many words", name->str);
        spec.words[spec.nwords] = strdup(w);
        CHECK(spec.words[spec.nwords] != NULL);
        spec.nwords++;
    }
    free(lower);
    CHECKF(spec.nwords > 0, "an empty command name");
    if (not_sent(spec.words[0]) || (spec.nwords == 1 && nsubs > 0)) {
        /* Never sent, or a container, which is sent through its subcommands. */
        for (size_t w = 0; w < spec.nwords; w++) free(spec.words[w]);
        return;
    }
    if (nspecs == specs_cap) {
        specs_cap = specs_cap ? specs_cap * 2 : 256;
        specs = realloc(specs, specs_cap * sizeof *specs);
        CHECK(specs != NULL);
    }
    specs[nspecs++] = spec;
}

/* Word by word, as tests/alignment.rs sorts (a name before its own subcommands). */
static int compare_specs(const void *a, const void *b) {
    const spec_t *x = a, *y = b;
    for (size_t i = 0; i < x->nwords && i < y->nwords; i++) {
        int c = strcmp(x->words[i], y->words[i]);
        if (c != 0) return c;
    }
    return (x->nwords > y->nwords) - (x->nwords < y->nwords);
}

/* Every command and subcommand of the server's COMMAND reply, read through redpool itself. */
static void command_table(void) {
    redpool_reply *table = POOL_CMD(pool, "COMMAND");
    CHECK_TYPE(table, REDPOOL_REPLY_ARRAY);
    for (size_t i = 0; i < table->elements; i++) collect(table->element[i]);
    redpool_reply_free(table);
    qsort(specs, nspecs, sizeof *specs, compare_specs);
    CHECKF(nspecs > 200, "only %zu commands in the table", nspecs);
}

static void free_specs(void) {
    for (size_t i = 0; i < nspecs; i++)
        for (size_t w = 0; w < specs[i].nwords; w++) free(specs[i].words[w]);
    free(specs);
}

/* ---- calls ------------------------------------------------------------------------------- */

/* One command to send: argv points at the spec's words and at `text`. */
typedef struct {
    size_t argc;
    const char *argv[MAX_ARGS];
    char text[MAX_ARGS][ARG_LEN];
} call_t;

/*
 * A call with arguments that satisfy the spec's arity. Numbers stay small (a count, a few
 * milliseconds); a blocking command waits at most a few seconds (numbers 1..3), often 10 ms.
 * The same draws as `generate` in tests/alignment.rs.
 */
static void generate(const spec_t *spec, rng_t *rng, call_t *c) {
    size_t fixed = (size_t)llabs(spec->arity);
    size_t count = fixed > spec->nwords ? fixed : spec->nwords;
    if (spec->arity < 0) count += rng_below(rng, 3);
    CHECKF(count <= MAX_ARGS, "%s needs %zu arguments", spec->words[0], count);
    c->argc = 0;
    for (size_t w = 0; w < spec->nwords; w++) c->argv[c->argc++] = spec->words[w];
    while (c->argc < count) {
        char *buf = c->text[c->argc];
        size_t pick = rng_below(rng, 10);
        if (spec->blocking && rng_below(rng, 2) == 0)
            snprintf(buf, ARG_LEN, "0.01");
        else if (pick <= 4)
            snprintf(buf, ARG_LEN, "gen:%" PRIu64 ":%zu", seed, rng_below(rng, 40));
        else if (pick <= 7)
            snprintf(buf, ARG_LEN, "%zu", 1 + rng_below(rng, 3));
        else
            snprintf(buf, ARG_LEN, "w%zu", rng_below(rng, 1000));
        c->argv[c->argc++] = buf;
    }
}

/* An ECHO probe; its token (the reply it must get) is c->text[1]. */
static void echo_probe(rng_t *rng, int thread, call_t *c) {
    snprintf(c->text[1], ARG_LEN, "probe-%d-%" PRIu64, thread, rng_next(rng));
    c->argc = 2;
    c->argv[0] = "ECHO";
    c->argv[1] = c->text[1];
}

/* ---- the tally --------------------------------------------------------------------------- */

/* What all threads saw; `wrong` and `notes` are recorded at once, the counters at the end. */
static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    size_t calls, probes_checked, probe_timeouts, wrong, notes_seen;
    size_t by_status[STATUSES];
    char first_wrong[KEEP_WRONG][512];
    char notes[KEEP_NOTES][512];
} tally;

/* One thread's counters. */
typedef struct {
    size_t calls, probes_checked, probe_timeouts;
    size_t by_status[STATUSES];
} local_t;

static void wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void wrong(const char *fmt, ...) {
    pthread_mutex_lock(&tally_lock);
    if (tally.wrong < KEEP_WRONG) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tally.first_wrong[tally.wrong], sizeof tally.first_wrong[0], fmt, ap);
        va_end(ap);
    }
    tally.wrong++;
    pthread_mutex_unlock(&tally_lock);
}

/* A note (a connection error, a timeout), printed at the end whatever the outcome. */
static void note(const char *what, uint32_t st, const char *message) {
    pthread_mutex_lock(&tally_lock);
    if (tally.notes_seen < KEEP_NOTES)
        snprintf(tally.notes[tally.notes_seen], sizeof tally.notes[0], "%.100s: %s: %.300s", what,
                 redpool_status_str(st), message);
    tally.notes_seen++;
    pthread_mutex_unlock(&tally_lock);
}

/* A failed call (not a probe): counted by status; a protocol error or a panic is wrong. */
static void failed(local_t *l, const char *what, uint32_t st) {
    const char *message = last_error();
    l->by_status[st < STATUSES ? st : STATUSES - 1]++;
    if (st == REDPOOL_STATUS_PROTOCOL || st == REDPOOL_STATUS_PANIC)
        wrong("%s: status %s: %s", what, redpool_status_str(st), message);
    else if (st == REDPOOL_STATUS_CONNECTION || st == REDPOOL_STATUS_TIMEOUT)
        note(what, st, message);
}

/* A failed probe call: wrong, unless it timed out (no reply at all: the server was busy). */
static void probe_failed(local_t *l, const char *what, const char *call, uint32_t st) {
    const char *message = last_error();
    l->by_status[st < STATUSES ? st : STATUSES - 1]++;
    char where[160];
    snprintf(where, sizeof where, "%.100s: %s", what, call);
    if (st == REDPOOL_STATUS_TIMEOUT) {
        l->probe_timeouts++;
        note(where, st, message);
    } else {
        wrong("%s failed: %s: %s", where, redpool_status_str(st), message);
    }
}

/* A short description of a reply, for a wrong probe. */
static void describe(const redpool_reply *r, char *buf, size_t len) {
    if (r == NULL)
        snprintf(buf, len, "nothing");
    else if (r->str != NULL)
        snprintf(buf, len, "%s \"%.80s\"", reply_type_name((int)r->type), r->str);
    else if (r->type == REDPOOL_REPLY_INTEGER)
        snprintf(buf, len, "INTEGER %lld", (long long)r->integer);
    else
        snprintf(buf, len, "%s of %zu elements", reply_type_name((int)r->type), r->elements);
}

/* A probe's reply: the bulk string `want`, or the status QUEUED when `queued`. */
static void check_probe(local_t *l, const char *what, const redpool_reply *got, const char *want,
                        bool queued) {
    l->probes_checked++;
    int type = queued ? REDPOOL_REPLY_STATUS : REDPOOL_REPLY_STRING;
    const char *text = queued ? "QUEUED" : want;
    if (got != NULL && (int)got->type == type && got->str != NULL && got->len == strlen(text) &&
        memcmp(got->str, text, got->len) == 0)
        return;
    char seen[160];
    describe(got, seen, sizeof seen);
    wrong("%s: probe expected %s \"%s\", got %s", what, queued ? "STATUS" : "STRING", text, seen);
}

/* An ECHO and a SET/GET of a key no other call touches, each checked. */
static void probe_alone(local_t *l, rng_t *rng, int thread, size_t i, const char *after) {
    char what[128];
    snprintf(what, sizeof what, "probe after %s", after);
    call_t echo;
    echo_probe(rng, thread, &echo);
    redpool_reply *r = NULL;
    uint32_t st = (uint32_t)redpool_pool_command(pool, echo.argc, echo.argv, NULL, &r);
    if (st == REDPOOL_STATUS_OK)
        check_probe(l, what, r, echo.text[1], false);
    else
        probe_failed(l, what, "ECHO", st);
    redpool_reply_free(r);

    char key[64], value[64];
    snprintf(key, sizeof key, "probe:%d:%zu", thread, i);
    snprintf(value, sizeof value, "v%" PRIu64, rng_next(rng));
    const char *set[] = {"SET", key, value};
    const char *get[] = {"GET", key};
    r = NULL;
    st = (uint32_t)redpool_pool_command(pool, 3, set, NULL, &r);
    if (st != REDPOOL_STATUS_OK) {
        probe_failed(l, what, "SET", st);
        return;
    }
    if (r == NULL || r->type != REDPOOL_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
        char seen[160];
        describe(r, seen, sizeof seen);
        wrong("%s: SET answered %s", what, seen);
    }
    redpool_reply_free(r);
    r = NULL;
    st = (uint32_t)redpool_pool_command(pool, 2, get, NULL, &r);
    if (st == REDPOOL_STATUS_OK)
        check_probe(l, what, r, value, false);
    else
        probe_failed(l, what, "GET", st);
    redpool_reply_free(r);
}

/* ---- the drivers ------------------------------------------------------------------------- */

typedef struct {
    int thread;
    size_t *share; /* indexes into specs, in this thread's order */
    size_t nshare;
} driver_t;

/* A probe inside a batch: its position and the reply it must get. */
typedef struct {
    size_t at;
    bool queued;
    const char *token;
} probe_t;

/* One batch (pipeline or transaction) of 1 to 3 generated copies between probes. */
static void batch(local_t *l, rng_t *rng, int thread, const spec_t *spec, const char *name,
                  bool transaction) {
    call_t calls[MAX_SLOTS];
    redpool_cmd cmds[MAX_SLOTS];
    probe_t probes[MAX_SLOTS];
    size_t n = 0, nprobes = 0;
    /*
     * In a pipeline, a probe after a generated MULTI (and before an EXEC or DISCARD) is queued:
     * its reply is QUEUED. A transaction's body may not hold MULTI, EXEC or DISCARD (redpool
     * refuses it), so there a probe always expects its token.
     */
    bool queued = false;
    size_t copies = 1 + rng_below(rng, 3);
    for (size_t k = 0; k < copies; k++) {
        if (rng_below(rng, 2) == 0) {
            echo_probe(rng, thread, &calls[n]);
            probes[nprobes++] = (probe_t){n, queued && !transaction, calls[n].text[1]};
            n++;
        }
        if (strcmp(spec->words[0], "multi") == 0)
            queued = true;
        else if (strcmp(spec->words[0], "exec") == 0 || strcmp(spec->words[0], "discard") == 0)
            queued = false;
        generate(spec, rng, &calls[n++]);
    }
    echo_probe(rng, thread, &calls[n]);
    probes[nprobes++] = (probe_t){n, queued && !transaction, calls[n].text[1]};
    n++;
    for (size_t k = 0; k < n; k++) {
        cmds[k].argc = calls[k].argc;
        cmds[k].argv = calls[k].argv;
        cmds[k].argvlen = NULL;
    }

    char what[128];
    snprintf(what, sizeof what, "%s in a %s", name, transaction ? "transaction" : "pipeline");
    l->calls++;
    redpool_reply *r = NULL;
    uint32_t st = transaction ? (uint32_t)redpool_pool_transaction(pool, n, cmds, &r)
                              : (uint32_t)redpool_pool_pipeline(pool, n, cmds, &r);
    if (st != REDPOOL_STATUS_OK) {
        failed(l, what, st);
        return;
    }
    if (transaction && r->type == REDPOOL_REPLY_NIL) {
        wrong("%s: aborted with no WATCH", what);
    } else if (transaction && r->type == REDPOOL_REPLY_ERROR) {
        /* EXECABORT: the server refused a command while queueing; nothing ran. */
    } else if (r->type != REDPOOL_REPLY_ARRAY) {
        char seen[160];
        describe(r, seen, sizeof seen);
        wrong("%s: %zu commands answered by %s", what, n, seen);
    } else {
        if (r->elements != n) wrong("%s: %zu commands, %zu replies", what, n, r->elements);
        for (size_t p = 0; p < nprobes; p++)
            check_probe(l, what, probes[p].at < r->elements ? r->element[probes[p].at] : NULL,
                        probes[p].token, probes[p].queued);
    }
    redpool_reply_free(r);
}

/* One thread's share: each command once alone, once in a pipeline, once in a transaction. */
static void *drive(void *arg) {
    const driver_t *d = arg;
    rng_t rng = rng_new(seed ^ ((uint64_t)(d->thread + 1) << 32));
    local_t l;
    memset(&l, 0, sizeof l);
    for (size_t i = 0; i < d->nshare; i++) {
        const spec_t *spec = &specs[d->share[i]];
        char name[96] = "";
        for (size_t w = 0; w < spec->nwords; w++) {
            if (w > 0) strncat(name, " ", sizeof name - strlen(name) - 1);
            strncat(name, spec->words[w], sizeof name - strlen(name) - 1);
        }
        /* Alone. */
        call_t alone;
        generate(spec, &rng, &alone);
        l.calls++;
        redpool_reply *r = NULL;
        uint32_t st = (uint32_t)redpool_pool_command(pool, alone.argc, alone.argv, NULL, &r);
        if (st != REDPOOL_STATUS_OK) {
            char what[128];
            snprintf(what, sizeof what, "%s alone", name);
            failed(&l, what, st);
        }
        redpool_reply_free(r);
        probe_alone(&l, &rng, d->thread, i, name);
        /* In a pipeline and in a transaction, between probes. */
        for (int transaction = 0; transaction < 2; transaction++) {
            batch(&l, &rng, d->thread, spec, name, transaction != 0);
            probe_alone(&l, &rng, d->thread, i, name);
        }
    }
    pthread_mutex_lock(&tally_lock);
    tally.calls += l.calls;
    tally.probes_checked += l.probes_checked;
    tally.probe_timeouts += l.probe_timeouts;
    for (int s = 0; s < STATUSES; s++) tally.by_status[s] += l.by_status[s];
    pthread_mutex_unlock(&tally_lock);
    return NULL;
}

/* After a timeout: what kept the server busy (its slow log's commands of 0.5 s or more). */
static void print_slow_commands(void) {
    redpool_reply *r = NULL;
    const char *argv[] = {"SLOWLOG", "GET", "128"};
    uint32_t st = (uint32_t)redpool_pool_command(pool, 3, argv, NULL, &r);
    if (st != REDPOOL_STATUS_OK || r->type != REDPOOL_REPLY_ARRAY) {
        printf("alignment: no slow log (%s)\n", redpool_status_str(st));
        redpool_reply_free(r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redpool_reply *e = r->element[i];
        if (e->type != REDPOOL_REPLY_ARRAY || e->elements < 4) continue;
        const redpool_reply *us = e->element[2], *args = e->element[3];
        if (us->type != REDPOOL_REPLY_INTEGER || us->integer < 500000) continue;
        printf("alignment: the server spent %.1f s on", (double)us->integer / 1e6);
        for (size_t a = 0; args->type == REDPOOL_REPLY_ARRAY && a < args->elements; a++)
            printf(" %s", args->element[a]->str != NULL ? args->element[a]->str : "?");
        printf("\n");
    }
    redpool_reply_free(r);
}

int main(void) {
    const char *url = url_from_env();
    seed = seed_from_env();

    char buf[256];
    redpool_pool *p = NULL;
    CHECK_OK(redpool_pool_from_url(
        url_with(buf, sizeof buf, url, "/?max_connections=2&acquire_timeout=60s&socket_timeout=30s&retries=0"), &p));
    pool = p;
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.max_connections, CONNECTIONS);

    command_table();

    /* Every command goes to two threads, each taking its share in its own order. */
    driver_t drivers[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        driver_t *d = &drivers[t];
        d->thread = t;
        d->nshare = 0;
        d->share = malloc(nspecs * sizeof *d->share);
        CHECK(d->share != NULL);
        for (size_t i = (size_t)(t % (THREADS / 2)); i < nspecs; i += THREADS / 2)
            d->share[d->nshare++] = i;
        rng_t rng = rng_new(seed + (uint64_t)t * 7919);
        for (size_t i = d->nshare; i-- > 1;) {
            size_t j = rng_below(&rng, i + 1);
            size_t tmp = d->share[i];
            d->share[i] = d->share[j];
            d->share[j] = tmp;
        }
    }
    double started = now_ms();
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, drive, &drivers[t]) == 0);
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(threads[t], NULL) == 0);
    double took = now_ms() - started;
    for (int t = 0; t < THREADS; t++) free(drivers[t].share);

    printf("alignment: seed %" PRIu64 ": %zu commands, %zu calls, %zu probes checked, %zu wrong\n",
           seed, nspecs, tally.calls, tally.probes_checked, tally.wrong);
    printf("alignment: %d threads on %d connections, %.1f s; %zu probes timed out\n", THREADS,
           CONNECTIONS, took / 1000.0, tally.probe_timeouts);
    printf("alignment: failed calls (probes included) by status:");
    for (int s = 0; s < STATUSES; s++)
        if (tally.by_status[s] > 0)
            printf(" %s=%zu", redpool_status_str((uint32_t)s), tally.by_status[s]);
    printf("\n");
    for (size_t i = 0; i < tally.notes_seen && i < KEEP_NOTES; i++)
        printf("alignment: %s\n", tally.notes[i]);
    if (tally.by_status[REDPOOL_STATUS_TIMEOUT] > 0) print_slow_commands();
    fflush(stdout);

    int failed_run = 0;
    if (tally.probes_checked <= nspecs * 4) {
        fprintf(stderr, "alignment: too few probes checked (%zu for %zu commands)\n",
                tally.probes_checked, nspecs);
        failed_run = 1;
    }
    if (tally.wrong > 0) {
        fprintf(stderr, "alignment: seed %" PRIu64 ": %zu wrong replies, first ones:\n", seed,
                tally.wrong);
        for (size_t i = 0; i < tally.wrong && i < KEEP_WRONG; i++)
            fprintf(stderr, "  %s\n", tally.first_wrong[i]);
        failed_run = 1;
    }

    free_specs();
    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(p);
    let_background_threads_finish();
    if (failed_run) return 1;
    return finish("alignment");
}
