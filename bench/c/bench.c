/* The C benchmark harness, shared by both drivers (see bench.h):
 *
 *   bench_redpool|bench_hiredis --port P [--host H] [--scenario get|set] [--concurrency C]
 *       [--pipeline P] [--size BYTES] [--ops N] [--keys K] [--max-seconds S] [--label L]
 *
 * C caller threads share the work of N commands (batches of P), over keys key:%012d < K that the
 * orchestrator has preloaded; it prints one JSON line with throughput and client CPU per command
 * (getrusage of the whole process, every thread included). Every loop is bounded by the count and
 * by --max-seconds. */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define KEY_LEN 16 /* "key:" + 12 digits, as redis-benchmark's key:__rand_int__ */

typedef struct options {
    const char *host;
    int port;
    const char *scenario;
    const char *label;
    int concurrency;
    size_t pipeline;
    size_t size;
    long ops;
    long keys;
    double max_seconds;
} options;

typedef struct caller_args {
    const options *opt;
    void *shared;
    const char *const *keys;
    const size_t *keylens;
    const char *value;
    long share;     /* commands this caller runs */
    long done;      /* commands it ran */
    double deadline;
    pthread_barrier_t *start;
    int failed;
} caller_args;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void usage_exit(const char *why) {
    fprintf(stderr, "bench: %s\n", why);
    exit(2);
}

static options parse(int argc, char **argv) {
    options o = {"127.0.0.1", 0, "get", "", 1, 1, 1, 10000, 10000, 30.0};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) o.host = v;
        else if (!strcmp(k, "--port")) o.port = atoi(v);
        else if (!strcmp(k, "--scenario")) o.scenario = v;
        else if (!strcmp(k, "--label")) o.label = v;
        else if (!strcmp(k, "--concurrency")) o.concurrency = atoi(v);
        else if (!strcmp(k, "--pipeline")) o.pipeline = (size_t)atol(v);
        else if (!strcmp(k, "--size")) o.size = (size_t)atol(v);
        else if (!strcmp(k, "--ops")) o.ops = atol(v);
        else if (!strcmp(k, "--keys")) o.keys = atol(v);
        else if (!strcmp(k, "--max-seconds")) o.max_seconds = atof(v);
        else usage_exit("unknown option (see the comment at the top of bench.c)");
    }
    if (argc % 2 == 0) usage_exit("options come in pairs");
    if (o.port <= 0 || o.concurrency < 1 || o.pipeline < 1 || o.ops < 1 || o.keys < 1 ||
        o.keys > 100000000)
        usage_exit("need --port and positive counts");
    if (strcmp(o.scenario, "get") && strcmp(o.scenario, "set")) usage_exit("--scenario get|set");
    return o;
}

static void *caller_main(void *arg) {
    caller_args *a = arg;
    const options *o = a->opt;
    void *caller = client_open_caller(a->shared);
    pthread_barrier_wait(a->start);
    if (!caller) {
        a->failed = 1;
        return NULL;
    }
    bench_batch batch = {!strcmp(o->scenario, "set"), o->pipeline, NULL, NULL, a->value, o->size};
    long cursor = 0; /* batches take consecutive keys, wrapping around the working set */
    while (a->done < a->share) {
        if ((a->done / (long)o->pipeline) % 64 == 0 && now_seconds() > a->deadline) break;
        long start = (cursor + (long)o->pipeline <= o->keys) ? cursor : 0;
        batch.keys = a->keys + start;
        batch.keylens = a->keylens + start;
        cursor = start + (long)o->pipeline;
        if (client_run(caller, &batch) != 0) {
            a->failed = 1;
            break;
        }
        a->done += (long)o->pipeline;
    }
    client_close_caller(caller);
    return NULL;
}

int main(int argc, char **argv) {
    options o = parse(argc, argv);
    long nkeys = o.keys < (long)o.pipeline ? (long)o.pipeline : o.keys;
    char *keybuf = malloc((size_t)nkeys * (KEY_LEN + 1));
    const char **keys = malloc((size_t)nkeys * sizeof *keys);
    size_t *keylens = malloc((size_t)nkeys * sizeof *keylens);
    char *value = malloc(o.size + 1);
    if (!keybuf || !keys || !keylens || !value) usage_exit("out of memory");
    for (long i = 0; i < nkeys; i++) {
        char *k = keybuf + i * (KEY_LEN + 1);
        snprintf(k, KEY_LEN + 1, "key:%012ld", (i % o.keys) % 1000000000000L);
        keys[i] = k;
        keylens[i] = KEY_LEN;
    }
    memset(value, 'x', o.size);
    value[o.size] = '\0';

    void *shared = client_open_shared(o.host, o.port, o.concurrency);
    if (!shared) return 1;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)o.concurrency + 1);
    caller_args *args = calloc((size_t)o.concurrency, sizeof *args);
    pthread_t *threads = calloc((size_t)o.concurrency, sizeof *threads);
    long batches = (o.ops + (long)o.pipeline - 1) / (long)o.pipeline;
    double t0 = now_seconds();
    for (int i = 0; i < o.concurrency; i++) {
        long mine = batches / o.concurrency + (i < batches % o.concurrency ? 1 : 0);
        args[i] = (caller_args){&o, shared, keys, keylens, value, mine * (long)o.pipeline, 0,
                                t0 + o.max_seconds, &start, 0};
        pthread_create(&threads[i], NULL, caller_main, &args[i]);
    }
    pthread_barrier_wait(&start); /* every caller has its connection: the clock starts now */
    double cpu0 = cpu_seconds();
    t0 = now_seconds();
    long done = 0;
    int failed = 0;
    for (int i = 0; i < o.concurrency; i++) {
        pthread_join(threads[i], NULL);
        done += args[i].done;
        failed |= args[i].failed;
    }
    double seconds = now_seconds() - t0;
    double cpu = cpu_seconds() - cpu0;
    client_close_shared(shared);
    if (failed || done == 0) {
        fprintf(stderr, "bench: %s failed\n", client_name());
        return 1;
    }
    printf("{\"lang\":\"c\",\"scenario\":\"%s\",\"label\":\"%s\",\"client\":\"%s\",\"concurrency\":%d,"
           "\"pipeline\":%zu,\"value_size\":%zu,\"ops\":%ld,\"seconds\":%.6f,\"ops_per_sec\":%.1f,"
           "\"cpu_us_per_op\":%.4f}\n",
           o.scenario, o.label, client_name(), o.concurrency, o.pipeline, o.size, done, seconds,
           (double)done / seconds, cpu * 1e6 / (double)done);
    return 0;
}
