/* The hiredis side of the C benchmark: hiredis has no pool, so each caller thread owns one
 * redisContext (the usual way to use it from threads). Single commands through
 * redisCommandArgv; batches through redisAppendCommandArgv + redisGetReply. */
#include "bench.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct endpoint {
    const char *host;
    int port;
} endpoint;

const char *client_name(void) { return "hiredis"; }

void *client_open_shared(const char *host, int port, int threads) {
    (void)threads;
    endpoint *e = malloc(sizeof *e);
    if (e) *e = (endpoint){host, port};
    return e;
}

void *client_open_caller(void *shared) {
    const endpoint *e = shared;
    redisContext *ctx = redisConnect(e->host, e->port);
    if (!ctx || ctx->err) {
        fprintf(stderr, "hiredis: connect: %s\n", ctx ? ctx->errstr : "out of memory");
        if (ctx) redisFree(ctx);
        return NULL;
    }
    return ctx;
}

static int check(redisReply *r, redisContext *ctx, int is_set) {
    int ok = r && (is_set ? r->type == REDIS_REPLY_STATUS : r->type == REDIS_REPLY_STRING);
    if (!ok) fprintf(stderr, "hiredis: bad reply (%s)\n", r ? "wrong type" : ctx->errstr);
    if (r) freeReplyObject(r);
    return ok ? 0 : -1;
}

int client_run(void *arg, const bench_batch *b) {
    redisContext *ctx = arg;
    const char *argv[3] = {b->is_set ? "SET" : "GET", NULL, b->value};
    size_t argvlen[3] = {3, 0, b->valuelen};
    int argc = b->is_set ? 3 : 2;
    if (b->n == 1) {
        argv[1] = b->keys[0];
        argvlen[1] = b->keylens[0];
        return check(redisCommandArgv(ctx, argc, argv, argvlen), ctx, b->is_set);
    }
    for (size_t i = 0; i < b->n; i++) {
        argv[1] = b->keys[i];
        argvlen[1] = b->keylens[i];
        if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK) return check(NULL, ctx, 0);
    }
    for (size_t i = 0; i < b->n; i++) {
        void *reply = NULL;
        if (redisGetReply(ctx, &reply) != REDIS_OK) return check(NULL, ctx, 0);
        if (check(reply, ctx, b->is_set) != 0) return -1;
    }
    return 0;
}

void client_close_caller(void *arg) { redisFree(arg); }

void client_close_shared(void *shared) { free(shared); }
