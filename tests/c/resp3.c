/*
 * resp3.c: the RESP3 reply types of redpool_reply (DOUBLE, BOOL, MAP, SET, PUSH, BIGNUM, VERB).
 * A C program reaches them by sending HELLO 3 on a checked-out connection; the server's
 * DEBUG PROTOCOL command (enabled on test servers) produces each type on demand. Afterwards the
 * connection must not go back to the pool: the next user must get RESP2 replies again.
 *
 * Environment: REDIS_URL (a server started with --enable-debug-command local).
 */
#include "check.h"

#include <math.h>

static redpool_reply *debug_protocol(redpool_conn *c, const char *type) {
    return CONN_CMD(c, "DEBUG", "PROTOCOL", type);
}

/* The reply must be exactly `text` (checked softly: a desync shows up here). */
static void expect_string(const redpool_reply *r, const char *text, const char *what) {
    bool ok = r->type == REDPOOL_REPLY_STRING && r->str != NULL && r->len == strlen(text) &&
              memcmp(r->str, text, r->len) == 0;
    EXPECTF(ok, "%s: got %s \"%s\", expected STRING \"%s\"", what,
            reply_type_name((int)r->type), r->str ? r->str : "", text);
}

static void test_types(redpool_conn *c) {
    redpool_reply *r;

    r = debug_protocol(c, "string");
    CHECK_STRING(r, "Hello World");
    redpool_reply_free(r);

    r = debug_protocol(c, "integer");
    CHECK_INTEGER(r, 12345);
    redpool_reply_free(r);

    r = debug_protocol(c, "double");
    CHECK_TYPE(r, REDPOOL_REPLY_DOUBLE);
    CHECKF(fabs(r->dval - 3.141) < 1e-9, "dval %f", r->dval);
    CHECK(r->str != NULL);
    CHECK_EQ_INT(r->str[r->len], '\0');
    CHECKF(strtod(r->str, NULL) == r->dval, "DOUBLE text \"%s\" vs %f", r->str, r->dval);
    redpool_reply_free(r);

    r = debug_protocol(c, "bignum");
    CHECK_TEXT(r, REDPOOL_REPLY_BIGNUM, "1234567999999999999999999999999999999");
    redpool_reply_free(r);

    r = debug_protocol(c, "null");
    CHECK_TYPE(r, REDPOOL_REPLY_NIL);
    redpool_reply_free(r);

    r = debug_protocol(c, "true");
    CHECK_TYPE(r, REDPOOL_REPLY_BOOL);
    CHECK_EQ_INT(r->integer, 1);
    CHECK(r->str == NULL);
    redpool_reply_free(r);
    r = debug_protocol(c, "false");
    CHECK_TYPE(r, REDPOOL_REPLY_BOOL);
    CHECK_EQ_INT(r->integer, 0);
    redpool_reply_free(r);

    r = debug_protocol(c, "array");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY);
    CHECK_EQ_INT(r->elements, 3);
    for (int i = 0; i < 3; i++) CHECK_INTEGER(r->element[i], i);
    redpool_reply_free(r);

    r = debug_protocol(c, "set");
    CHECK_TYPE(r, REDPOOL_REPLY_SET);
    CHECK_EQ_INT(r->elements, 3);
    for (int i = 0; i < 3; i++) CHECK_TYPE(r->element[i], REDPOOL_REPLY_INTEGER);
    redpool_reply_free(r);

    /* A map: keys and values alternate; {0: false, 1: true, 2: false}. */
    r = debug_protocol(c, "map");
    CHECK_TYPE(r, REDPOOL_REPLY_MAP);
    CHECK_EQ_INT(r->elements, 6);
    for (int i = 0; i < 3; i++) {
        CHECK_INTEGER(r->element[2 * i], i);
        CHECK_TYPE(r->element[2 * i + 1], REDPOOL_REPLY_BOOL);
        CHECK_EQ_INT(r->element[2 * i + 1]->integer, i == 1);
    }
    redpool_reply_free(r);

    r = debug_protocol(c, "verbatim");
    CHECK_TEXT(r, REDPOOL_REPLY_VERB, "This is a verbatim\nstring");
    CHECK_STREQ(r->vtype, "txt");
    redpool_reply_free(r);

    /* An attribute is metadata before the real reply: the caller gets the real reply. */
    r = debug_protocol(c, "attrib");
    CHECK_STRING(r, "Some real reply following the attribute");
    redpool_reply_free(r);

    /* Real RESP3 data types from real commands. */
    r = CONN_CMD(c, "HSET", "resp3:h", "f", "v");
    redpool_reply_free(r);
    r = CONN_CMD(c, "HGETALL", "resp3:h");
    CHECK_TYPE(r, REDPOOL_REPLY_MAP);
    CHECK_EQ_INT(r->elements, 2);
    CHECK_STRING(r->element[0], "f");
    CHECK_STRING(r->element[1], "v");
    redpool_reply_free(r);
    r = CONN_CMD(c, "ZADD", "resp3:z", "2.5", "m");
    redpool_reply_free(r);
    r = CONN_CMD(c, "ZSCORE", "resp3:z", "m");
    CHECK_TYPE(r, REDPOOL_REPLY_DOUBLE);
    CHECK(r->dval == 2.5);
    redpool_reply_free(r);

    /* The same types inside a pipeline. */
    args_t d = args_of("DEBUG", "PROTOCOL", "double", NULL);
    args_t m = args_of("DEBUG", "PROTOCOL", "map", NULL);
    args_t t = args_of("DEBUG", "PROTOCOL", "true", NULL);
    redpool_cmd cmds[3] = {cmd_of(&d), cmd_of(&m), cmd_of(&t)};
    CHECK_OK(redpool_conn_pipeline(c, 3, cmds, &r));
    CHECK_EQ_INT(r->elements, 3);
    CHECK_TYPE(r->element[0], REDPOOL_REPLY_DOUBLE);
    CHECK_TYPE(r->element[1], REDPOOL_REPLY_MAP);
    CHECK_TYPE(r->element[2], REDPOOL_REPLY_BOOL);
    redpool_reply_free(r);
}

/* A push message arrives before the command's real reply. The caller must get the real reply to
 * its command, and the reply to the next command must be that command's: no desync. */
static void test_push(redpool_conn *c) {
    redpool_reply *r = debug_protocol(c, "push");
    if (r->type == REDPOOL_REPLY_PUSH) {
        /* Handed out as the reply: then at least all of it must be there, the kind first
         * (as in hiredis: ["server-cpu-usage", 42]). */
        EXPECTF(r->elements == 2 && r->element[0]->type == REDPOOL_REPLY_STRING &&
                    strcmp(r->element[0]->str, "server-cpu-usage") == 0,
                "the PUSH reply lost its first element (the push kind): %zu element(s), the "
                "first is %s \"%s\"",
                r->elements, r->elements ? reply_type_name((int)r->element[0]->type) : "-",
                r->elements && r->element[0]->str ? r->element[0]->str : "");
        CHECK(r->elements >= 1);
        CHECK_INTEGER(r->element[r->elements - 1], 42);
        EXPECTF(false, "DEBUG PROTOCOL push: the out-of-band PUSH message was returned as the "
                       "command's reply; its real reply is left unread on the connection");
    } else {
        expect_string(r, "Some real reply following the push reply", "DEBUG PROTOCOL push");
    }
    redpool_reply_free(r);
    r = CONN_CMD(c, "ECHO", "after-push");
    expect_string(r, "after-push", "ECHO after DEBUG PROTOCOL push");
    redpool_reply_free(r);
}

/* Client-side caching: after CLIENT TRACKING ON, a write by someone else to a key this
 * connection read makes the server send an "invalidate" push. The next command on the connection
 * must still get its own reply. */
static void test_tracking(const redpool_pool *pool) {
    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_reply *r = CONN_CMD(c, "HELLO", "3");
    redpool_reply_free(r);
    r = CONN_CMD(c, "CLIENT", "TRACKING", "on");
    CHECK_STATUS_REPLY(r, "OK");
    redpool_reply_free(r);
    r = POOL_CMD(pool, "SET", "resp3:tracked", "v1");
    redpool_reply_free(r);
    r = CONN_CMD(c, "GET", "resp3:tracked");
    CHECK_STRING(r, "v1");
    redpool_reply_free(r);
    /* Another connection changes it: an invalidation is pushed to this one. */
    r = POOL_CMD(pool, "SET", "resp3:tracked", "v2");
    redpool_reply_free(r);
    sleep_ms(100);
    r = CONN_CMD(c, "GET", "resp3:tracked");
    expect_string(r, "v2", "GET after an invalidation push");
    redpool_reply_free(r);
    r = CONN_CMD(c, "ECHO", "next");
    expect_string(r, "next", "ECHO after an invalidation push");
    redpool_reply_free(r);
    redpool_conn_release(&c);
}

int main(void) {
    const char *url = url_from_env();
    char buf[256];
    redpool_pool *pool = NULL;
    CHECK_OK(redpool_pool_from_url(url_with(buf, sizeof buf, url, "/?max_connections=2"), &pool));

    redpool_conn *c = NULL;
    CHECK_OK(redpool_pool_acquire(pool, REDPOOL_TIMEOUT_DEFAULT, &c));
    redpool_reply *r = CONN_CMD(c, "HELLO", "3");
    CHECK_TYPE(r, REDPOOL_REPLY_MAP);
    CHECK(r->elements >= 2 && r->elements % 2 == 0);
    CHECK_STRING(r->element[0], "server");
    CHECK_STRING(r->element[1], "redis");
    bool proto3 = false;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->str && strcmp(r->element[i]->str, "proto") == 0)
            proto3 = r->element[i + 1]->type == REDPOOL_REPLY_INTEGER &&
                     r->element[i + 1]->integer == 3;
    CHECK(proto3);
    redpool_reply_free(r);

    test_types(c);
    test_push(c); /* last on this connection: it may leave it out of step */

    /* HELLO changed the connection's protocol: it is closed on release, never reused. */
    redpool_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_OK(redpool_pool_stats(pool, &st));
    uint64_t discarded = st.closed_discarded;
    redpool_conn_release(&c);
    CHECK_OK(redpool_pool_stats(pool, &st));
    CHECK_EQ_INT(st.closed_discarded, discarded + 1);
    r = POOL_CMD(pool, "HGETALL", "resp3:h");
    CHECK_TYPE(r, REDPOOL_REPLY_ARRAY); /* RESP2 again */
    redpool_reply_free(r);
    r = POOL_CMD(pool, "ZSCORE", "resp3:z", "m");
    CHECK_STRING(r, "2.5");
    redpool_reply_free(r);

    test_tracking(pool);

    CHECK_OK(redpool_pool_close(pool, 1000));
    redpool_pool_free(pool);
    let_background_threads_finish();
    return finish("resp3");
}
