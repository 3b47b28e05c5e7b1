/* The C benchmark driver's interface: bench.c (the harness: arguments, working set, threads,
 * timing, getrusage, one JSON line) calls one client implementation, linked in from
 * client_redpool.c or client_hiredis.c. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>

/* One batch of `n` commands (n == 1: a single command; n > 1: one pipeline), all GET or all SET. */
typedef struct bench_batch {
    int is_set;
    size_t n;
    const char *const *keys;
    const size_t *keylens;
    const char *value;
    size_t valuelen;
} bench_batch;

/* The client's name in the results ("redpool", "hiredis"). */
const char *client_name(void);
/* State shared by every caller thread (redpool: the pool); NULL on failure, after a message. */
void *client_open_shared(const char *host, int port, int threads);
/* One caller thread's state (hiredis: its own connection); NULL on failure, after a message. */
void *client_open_caller(void *shared);
/* Runs a batch and checks every reply; 0 on success, -1 after printing why. */
int client_run(void *caller, const bench_batch *batch);
void client_close_caller(void *caller);
void client_close_shared(void *shared);

#endif
