/* A small C program using redpool: a shared pool, a command, a pipeline, a WATCH transaction on
 * a checked-out connection, and the stats. Build with `make` here (see the Makefile). */
#include <redpool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, redpool_status status) {
    char message[512];
    redpool_last_error_message(message, sizeof message);
    fprintf(stderr, "%s failed: %s: %s\n", what, redpool_status_str(status), message);
    exit(1);
}

int main(void) {
    const char *url = getenv("REDIS_URL") ? getenv("REDIS_URL") : "redis://127.0.0.1:6379/0";
    redpool_pool *pool = NULL;
    redpool_status st = redpool_pool_shared(url, &pool);
    if (st != REDPOOL_STATUS_OK) fail("redpool_pool_shared", st);

    /* One command: binary-safe argv/argvlen, as hiredis's redisCommandArgv. */
    const char *set_argv[] = {"SET", "hello:greeting", "hi\0there"};
    size_t set_len[] = {3, 14, 8};
    redpool_reply *reply = NULL;
    if ((st = redpool_pool_command(pool, 3, set_argv, set_len, &reply)) != REDPOOL_STATUS_OK) fail("SET", st);
    printf("SET -> %s\n", reply->str);
    redpool_reply_free(reply);

    const char *get_argv[] = {"GET", "hello:greeting"};
    if ((st = redpool_pool_command(pool, 2, get_argv, NULL, &reply)) != REDPOOL_STATUS_OK) fail("GET", st);
    printf("GET -> %zu bytes\n", reply->len);
    redpool_reply_free(reply);

    /* A pipeline: one round trip, one reply per command. */
    const char *incr[] = {"INCR", "hello:counter"};
    redpool_cmd cmds[3] = {{2, incr, NULL}, {2, incr, NULL}, {2, incr, NULL}};
    if ((st = redpool_pool_pipeline(pool, 3, cmds, &reply)) != REDPOOL_STATUS_OK) fail("pipeline", st);
    printf("pipeline -> %zu replies, last %lld\n", reply->elements, (long long)reply->element[2]->integer);
    redpool_reply_free(reply);

    /* Optimistic locking: WATCH, read, MULTI/EXEC on one checked-out connection. */
    redpool_conn *conn = NULL;
    if ((st = redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &conn)) != REDPOOL_STATUS_OK) fail("acquire", st);
    const char *watch[] = {"WATCH", "hello:counter"};
    if ((st = redpool_conn_command(conn, 2, watch, NULL, &reply)) != REDPOOL_STATUS_OK) fail("WATCH", st);
    redpool_reply_free(reply);
    const char *incrby[] = {"INCRBY", "hello:counter", "10"};
    redpool_cmd tx[1] = {{3, incrby, NULL}};
    if ((st = redpool_conn_transaction(conn, 1, tx, &reply)) != REDPOOL_STATUS_OK) fail("transaction", st);
    if (reply->type == REDPOOL_REPLY_NIL) printf("transaction aborted: the key changed\n");
    else printf("transaction -> %lld\n", (long long)reply->element[0]->integer);
    redpool_reply_free(reply);
    redpool_conn_release(&conn); /* conn is NULL now */

    redpool_stats stats = {.struct_size = sizeof stats};
    if ((st = redpool_pool_stats(pool, &stats)) != REDPOOL_STATUS_OK) fail("stats", st);
    printf("stats: open=%llu idle=%llu commands=%llu\n", (unsigned long long)stats.open,
           (unsigned long long)stats.idle, (unsigned long long)stats.commands);

    redpool_pool_free(pool);
    return 0;
}
