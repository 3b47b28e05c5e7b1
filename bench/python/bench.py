"""Python benchmark driver: redpool.Redis against redis-py (with its hiredis parser), each with
a pool of --concurrency connections; redis-py on a BlockingConnectionPool, as threaded
services use it. Usage: python bench.py --client redpool|redis-py --port P [options of
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


CLIENTS = {"redpool": redpool_client, "redis-py": redis_py_client}

if __name__ == "__main__":
    args = common.parse_args(CLIENTS)
    common.run("python", args.client, CLIENTS[args.client](args), args)
