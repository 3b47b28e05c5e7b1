"""Python benchmark driver: redpool.Redis against redis-py (with its hiredis parser), each with
a pool of --concurrency connections; redis-py on a BlockingConnectionPool, as threaded
services use it. With --asyncio, redpool.asyncio.Redis against redis.asyncio.Redis (hiredis
parser, BlockingConnectionPool of --concurrency connections), --concurrency tasks on one event
loop. Usage: python bench.py --client redpool|redis-py --port P [options of
common.py]."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def redpool_client(args):
    import redpool

    return redpool.Redis(host=args.host, port=args.port, max_connections=args.concurrency,
                         shared_pool=False)


def redis_py_client(args):
    import redis

    pool = redis.BlockingConnectionPool(host=args.host, port=args.port,
                                        max_connections=args.concurrency, timeout=5)
    return redis.Redis(connection_pool=pool)


def redpool_async_client(args):
    import redpool.asyncio

    return redpool.asyncio.Redis(host=args.host, port=args.port, max_connections=args.concurrency,
                                 shared_pool=False)


def redis_py_async_client(args):
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool(host=args.host, port=args.port,
                                                max_connections=args.concurrency, timeout=5)
    return redis.asyncio.Redis(connection_pool=pool)


CLIENTS = {"redpool": redpool_client, "redis-py": redis_py_client}
ASYNC_CLIENTS = {"redpool": redpool_async_client, "redis-py": redis_py_async_client}

if __name__ == "__main__":
    args = common.parse_args(CLIENTS)
    if args.asyncio:
        common.run_async("python", args.client, ASYNC_CLIENTS[args.client], args)
    else:
        common.run("python", args.client, CLIENTS[args.client](args), args)
