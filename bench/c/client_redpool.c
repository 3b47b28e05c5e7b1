/* The redpool side of the C benchmark: one pool shared by every caller thread, sized to the
 * number of callers (as a service would configure it); single commands through
 * redpool_pool_command, batches through redpool_pool_pipeline. */
#include "bench.h"

#include <redpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct caller {
    const redpool_pool *pool;
    redpool_cmd *cmds;
    const char **argv; /* 3 per command: name, key, value */
    size_t *argvlen;
    size_t capacity;
} caller;

const char *client_name(void) { return "redpool"; }

static void report(const char *what, redpool_status status) {
    char message[256];
    redpool_last_error_message(message, sizeof message);
    fprintf(stderr, "redpool: %s: %s: %s\n", what, redpool_status_str(status), message);
}

void *client_open_shared(const char *host, int port, int threads) {
    char url[256];
    snprintf(url, sizeof url, "redis://%s:%d/0?max_connections=%d&min_idle=%d", host, port, threads,
             threads);
    redpool_pool *pool = NULL;
    redpool_status status = redpool_pool_from_url(url, &pool);
    if (status != REDPOOL_STATUS_OK) {
        report("redpool_pool_from_url", status);
        return NULL;
    }
    return pool;
}

void *client_open_caller(void *shared) {
    caller *c = calloc(1, sizeof *c);
    if (c) c->pool = shared;
    return c;
}

static int check(const redpool_reply *r, int is_set) {
    if (is_set ? r->type == REDPOOL_REPLY_STATUS : r->type == REDPOOL_REPLY_STRING) return 0;
    fprintf(stderr, "redpool: unexpected reply type %d\n", (int)r->type);
    return -1;
}

static int grow(caller *c, size_t n) {
    if (n <= c->capacity) return 0;
    c->cmds = realloc(c->cmds, n * sizeof *c->cmds);
    c->argv = realloc(c->argv, 3 * n * sizeof *c->argv);
    c->argvlen = realloc(c->argvlen, 3 * n * sizeof *c->argvlen);
    c->capacity = n;
    return c->cmds && c->argv && c->argvlen ? 0 : -1;
}

int client_run(void *arg, const bench_batch *b) {
    caller *c = arg;
    if (grow(c, b->n) != 0) return -1;
    for (size_t i = 0; i < b->n; i++) {
        const char **argv = c->argv + 3 * i;
        size_t *argvlen = c->argvlen + 3 * i;
        argv[0] = b->is_set ? "SET" : "GET";
        argvlen[0] = 3;
        argv[1] = b->keys[i];
        argvlen[1] = b->keylens[i];
        argv[2] = b->value;
        argvlen[2] = b->valuelen;
        c->cmds[i] = (redpool_cmd){b->is_set ? 3 : 2, argv, argvlen};
    }
    redpool_reply *reply = NULL;
    redpool_status status = b->n == 1
        ? redpool_pool_command(c->pool, c->cmds[0].argc, c->argv, c->argvlen, &reply)
        : redpool_pool_pipeline(c->pool, b->n, c->cmds, &reply);
    if (status != REDPOOL_STATUS_OK) {
        report(b->n == 1 ? "redpool_pool_command" : "redpool_pool_pipeline", status);
        return -1;
    }
    int rc = 0;
    if (b->n == 1) {
        rc = check(reply, b->is_set);
    } else {
        for (size_t i = 0; i < reply->elements && rc == 0; i++) rc = check(reply->element[i], b->is_set);
    }
    redpool_reply_free(reply);
    return rc;
}

void client_close_caller(void *arg) {
    caller *c = arg;
    if (!c) return;
    free(c->cmds);
    free(c->argv);
    free(c->argvlen);
    free(c);
}

void client_close_shared(void *shared) {
    redpool_pool_close(shared, 1000);
    redpool_pool_free(shared);
}
