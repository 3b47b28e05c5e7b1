/*
 * replies.c: the reply tree for every RESP2 reply type, binary safety (NUL bytes in keys and
 * values, a 1 MiB value), server error replies (a reply, not a failure), and the shape rules of
 * redpool_reply (NUL-terminated str, NULL str / element where they do not apply).
 *
 * Environment: REDIS_URL.
 */
#include "check.h"

#define MIB (1024u * 1024u)

/* Fields that do not apply to a type are zero / NULL. */
static void check_scalar_shape(const redpool_reply *r) {
    CHECK_EQ_INT(r->elements, 0);
    CHECK(r->element == NULL);
}

static void check_no_text(const redpool_reply *r) {
    CHECK(r->str == NULL);
    CHECK_EQ_INT(r->len, 0);
}

static void test_binary_values(const redpool_pool *pool) {
    /* A key and a value with NUL bytes (and other non-text bytes) inside. */
    const char key[] = {'b', 'i', 'n', '\0', 'k', 'e', 'y'};
    const char value[] = {'\0', 'a', '\0', '\r', '\n', (char)0xff, 'b', '\0'};
    const char *set_argv[] = {"SET", key, value};
    const size_t set_len[] = {3, sizeof key, sizeof value};
    redpool_reply *r = NULL;
    CHECK_OK(redpool_pool_command(pool, 3, set_argv, set_len, &r));
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);

    const char *get_argv[] = {"GET", key};
    const size_t get_len[] = {3, sizeof key};
    CHECK_OK(redpool_pool_command(pool, 2, get_argv, get_len, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_STRING);
    CHECK_EQ_INT(r->len, sizeof value);
    CHECK(memcmp(r->str, value, sizeof value) == 0);
    CHECK_EQ_INT(r->str[r->len], '\0');
    check_scalar_shape(r);
    redpool_reply_free(r);

    /* The key without its tail is another key: the NUL was not a terminator. */
    const char *short_argv[] = {"EXISTS", "bin"};
    CHECK_OK(redpool_pool_command(pool, 2, short_argv, NULL, &r));
    CHECK_INTEGER(r, 0);
    redpool_reply_free(r);

    /* An empty value is a STRING of length 0 with a valid, terminated str. */
    const char *empty_argv[] = {"SET", "replies:empty", ""};
    CHECK_OK(redpool_pool_command(pool, 3, empty_argv, NULL, &r));
    redpool_reply_free(r);
    r = POOL_CMD(pool, "GET", "replies:empty");
    CHECK_TYPE(r, REDPOOL_REPLY_STRING);
    CHECK_EQ_INT(r->len, 0);
    CHECK(r->str != NULL);
    CHECK_EQ_INT(r->str[0], '\0');
    redpool_reply_free(r);
}

static void test_big_value(const redpool_pool *pool) {
    unsigned char *big = malloc(MIB);
    CHECK(big != NULL);
    for (size_t i = 0; i < MIB; i++) big[i] = (unsigned char)((i * 31u + 7u) & 0xffu);
    big[0] = 0;
    big[MIB - 1] = 0;

    const char *set_argv[] = {"SET", "replies:big", (const char *)big};
    const size_t set_len[] = {3, 11, MIB};
    redpool_reply *r = NULL;
    CHECK_OK(redpool_pool_command(pool, 3, set_argv, set_len, &r));
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);

    r = POOL_CMD(pool, "STRLEN", "replies:big");
    CHECK_INTEGER(r, MIB);
    redpool_reply_free(r);

    r = POOL_CMD(pool, "GET", "replies:big");
    CHECK_TYPE(r, REDPOOL_REPLY_STRING);
    CHECK_EQ_INT(r->len, MIB);
    CHECK(memcmp(r->str, big, MIB) == 0);
    CHECK_EQ_INT(r->str[MIB], '\0');
    redpool_reply_free(r);

    /* Twice in one pipeline, on a checked-out connection too. */
    const char *get_argv[] = {"GET", "replies:big"};
    redpool_cmd cmds[2] = {{2, get_argv, NULL}, {2, get_argv, NULL}};
    CHECK_OK(redpool_pool_pipeline(pool, 2, cmds, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 2);
    for (size_t i = 0; i < 2; i++) {
        CHECK_TYPE(r->element[i], REDPOOL_REPLY_STRING);
        CHECK_EQ_INT(r->element[i]->len, MIB);
        CHECK(memcmp(r->element[i]->str, big, MIB) == 0);
    }
    redpool_reply_free(r);

    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    CHECK_OK(redpool_conn_command(c, 3, set_argv, set_len, &r));
    redpool_reply_free(r);
    CHECK_OK(redpool_conn_command(c, 2, get_argv, NULL, &r));
    CHECK_EQ_INT(r->len, MIB);
    CHECK(memcmp(r->str, big, MIB) == 0);
    redpool_reply_free(r);
    redpool_conn_release(&c);
    free(big);
}

static void test_scalars(const redpool_pool *pool) {
    redpool_reply *r;

    /* STATUS */
    r = POOL_CMD(pool, "PING");
    CHECK_STATUS_REPLY(r, "PONG");
    check_scalar_shape(r);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "SET", "replies:s", "hello");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "TYPE", "replies:s");
    CHECK_STATUS_REPLY(r, "string");
    redpool_reply_free(r);

    /* STRING */
    r = POOL_CMD(pool, "GET", "replies:s");
    CHECK_STRING(r, "hello");
    check_scalar_shape(r);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "ECHO", "with spaces\tand tabs");
    CHECK_STRING(r, "with spaces\tand tabs");
    redpool_reply_free(r);

    /* INTEGER: positive, negative, large */
    r = POOL_CMD(pool, "INCR", "replies:n");
    CHECK_INTEGER(r, 1);
    check_no_text(r);
    check_scalar_shape(r);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "DECRBY", "replies:n", "6");
    CHECK_INTEGER(r, -5);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "INCRBY", "replies:n", "4611686018427387904");
    CHECK_INTEGER(r, INT64_C(4611686018427387899));
    redpool_reply_free(r);
    r = POOL_CMD(pool, "SET", "replies:min", "-9223372036854775808");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "INCRBY", "replies:min", "0");
    CHECK_INTEGER(r, INT64_MIN);
    redpool_reply_free(r);

    /* NIL */
    r = POOL_CMD(pool, "GET", "replies:missing");
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    check_no_text(r);
    check_scalar_shape(r);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "SET", "replies:s", "x", "NX");
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    redpool_reply_free(r);
}

static void test_arrays(const redpool_pool *pool) {
    redpool_reply *r;

    /* A flat array of strings. */
    r = POOL_CMD(pool, "RPUSH", "replies:list", "a", "bb", "ccc");
    CHECK_INTEGER(r, 3);
    redpool_reply_free(r);
    r = POOL_CMD(pool, "LRANGE", "replies:list", "0", "-1");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    check_no_text(r);
    CHECK_EQ_INT(r->elements, 3);
    CHECK(r->element != NULL);
    CHECK_STRING(r->element[0], "a");
    CHECK_STRING(r->element[1], "bb");
    CHECK_STRING(r->element[2], "ccc");
    redpool_reply_free(r);

    /* An empty array: no elements, element NULL. */
    r = POOL_CMD(pool, "LRANGE", "replies:nolist", "0", "-1");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 0);
    CHECK(r->element == NULL);
    redpool_reply_free(r);

    /* An array with a NIL inside. */
    r = POOL_CMD(pool, "MGET", "replies:s", "replies:missing", "replies:s");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 3);
    CHECK_STRING(r->element[0], "hello");
    CHECK_TYPE(r->element[1], REDPOOL_REPLY_NIL);
    CHECK_STRING(r->element[2], "hello");
    redpool_reply_free(r);

    /* Nested arrays with every scalar type inside, from a script:
     * {1, {2, {"deep"}, {}}, "s", status "FINE", nil (Lua false), error "MYERR inner"} */
    r = POOL_CMD(pool, "EVAL",
                 "return {1, {2, {'deep'}, {}}, 's', redis.status_reply('FINE'), false, "
                 "redis.error_reply('MYERR inner')}",
                 "0");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 6);
    CHECK_INTEGER(r->element[0], 1);
    const redpool_reply *nested = r->element[1];
    CHECK_TYPE(nested, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(nested->elements, 3);
    CHECK_INTEGER(nested->element[0], 2);
    CHECK_TYPE(nested->element[1], REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(nested->element[1]->elements, 1);
    CHECK_STRING(nested->element[1]->element[0], "deep");
    CHECK_TYPE(nested->element[2], REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(nested->element[2]->elements, 0);
    CHECK(nested->element[2]->element == NULL);
    CHECK_STRING(r->element[2], "s");
    CHECK_STATUS_REPLY(r->element[3], "FINE");
    CHECK_TYPE(r->element[4], REDPOOL_REPLY_NIL);
    CHECK_ERROR_REPLY(r->element[5], "MYERR inner");
    redpool_reply_free(r);

    /* RESP2 hashes are flat arrays of field/value pairs. */
    r = POOL_CMD(pool, "HSET", "replies:h", "f", "v");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "HGETALL", "replies:h");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 2);
    CHECK_STRING(r->element[0], "f");
    CHECK_STRING(r->element[1], "v");
    redpool_reply_free(r);

    /* Scores come back as strings in RESP2. */
    r = POOL_CMD(pool, "ZADD", "replies:z", "1.5", "m");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "ZSCORE", "replies:z", "m");
    CHECK_STRING(r, "1.5");
    redpool_reply_free(r);

    /* A reply tree is immutable and stays valid after later calls. */
    redpool_reply *first = POOL_CMD(pool, "LRANGE", "replies:list", "0", "0");
    redpool_reply *second = POOL_CMD(pool, "LRANGE", "replies:list", "1", "1");
    CHECK_STRING(first->element[0], "a");
    CHECK_STRING(second->element[0], "bb");
    redpool_reply_free(first);
    CHECK_STRING(second->element[0], "bb");
    redpool_reply_free(second);
}

static void test_error_replies(const redpool_pool *pool) {
    redpool_reply *r;

    /* WRONGTYPE: the call succeeds; the reply is an ERROR with the server's text. */
    r = POOL_CMD(pool, "LPUSH", "replies:s", "x");
    CHECK_ERROR_REPLY(r, "WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK_EQ_INT(r->len, strlen(r->str));
    check_scalar_shape(r);
    redpool_reply_free(r);
    CHECK_EQ_INT(redpool_last_error_message(NULL, 0), 0); /* not a failure */

    /* Unknown command. */
    r = POOL_CMD(pool, "NOSUCHCOMMAND", "a");
    CHECK_ERROR_REPLY(r, "ERR unknown command");
    redpool_reply_free(r);

    /* Wrong number of arguments. */
    r = POOL_CMD(pool, "GET");
    CHECK_ERROR_REPLY(r, "ERR wrong number of arguments");
    redpool_reply_free(r);

    /* A value error. */
    r = POOL_CMD(pool, "INCR", "replies:s");
    CHECK_ERROR_REPLY(r, "ERR value is not an integer");
    redpool_reply_free(r);

    /* An error from a script, with its own code. */
    r = POOL_CMD(pool, "EVAL", "return redis.error_reply('CUSTOM my message')", "0");
    CHECK_ERROR_REPLY(r, "CUSTOM my message");
    redpool_reply_free(r);

    /* The connection that carried the errors is fine: the next calls work. */
    r = POOL_CMD(pool, "GET", "replies:s");
    CHECK_STRING(r, "hello");
    redpool_reply_free(r);

    /* Errors in place in a pipeline. */
    const char *a1[] = {"SET", "replies:p", "1"};
    const char *a2[] = {"LPUSH", "replies:p", "x"};
    const char *a3[] = {"INCR", "replies:p"};
    const char *a4[] = {"NOSUCHCOMMAND"};
    const char *a5[] = {"GET", "replies:p"};
    redpool_cmd cmds[] = {{3, a1, NULL}, {3, a2, NULL}, {2, a3, NULL}, {1, a4, NULL},
                          {2, a5, NULL}};
    CHECK_OK(redpool_pool_pipeline(pool, 5, cmds, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 5);
    CHECK_STATUS_REPLY(r->element[0], "OK");
    CHECK_ERROR_REPLY(r->element[1], "WRONGTYPE");
    CHECK_INTEGER(r->element[2], 2);
    CHECK_ERROR_REPLY(r->element[3], "ERR unknown command");
    CHECK_STRING(r->element[4], "2");
    redpool_reply_free(r);

    /* A runtime error inside a transaction is an ERROR element of its ARRAY. */
    redpool_cmd tx[] = {{3, a1, NULL}, {3, a2, NULL}, {2, a3, NULL}};
    CHECK_OK(redpool_pool_transaction(pool, 3, tx, &r));
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 3);
    CHECK_STATUS_REPLY(r->element[0], "OK");
    CHECK_ERROR_REPLY(r->element[1], "WRONGTYPE");
    CHECK_INTEGER(r->element[2], 2);
    redpool_reply_free(r);

    /* A command rejected while queueing aborts the whole transaction: an EXECABORT ERROR. */
    redpool_cmd bad_tx[] = {{2, a3, NULL}, {1, a4, NULL}};
    CHECK_OK(redpool_pool_transaction(pool, 2, bad_tx, &r));
    CHECK_ERROR_REPLY(r, "EXECABORT");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "GET", "replies:p");
    CHECK_STRING(r, "2"); /* nothing of it ran */
    redpool_reply_free(r);
}

int main(void) {
    const char *url = url_from_env();
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url, &pool));
    redpool_reply *r = POOL_CMD(pool, "FLUSHDB");
    redpool_reply_free(r);

    test_binary_values(pool);
    test_big_value(pool);
    test_scalars(pool);
    test_arrays(pool);
    test_error_replies(pool);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
    let_background_threads_finish();
    return finish("replies");
}
