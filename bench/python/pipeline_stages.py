"""Where a Python pipeline's time goes, per command: redpool's stages (queueing by redis-py's
command methods, the native Codec.pack, the native pipeline call, the native Codec.shape) and
the whole execute() of both redpool and redis-py (hiredis), in one process, alternating, the
best of 9 runs of 100 pipelines of 100 commands each (bench/results/PROFILE.md).

Usage: python pipeline_stages.py --port P [--scenario get|set] [--size BYTES]
(keys key:%012d below 10,000 are written first with the value size)."""

import argparse
import time

import redis

import redpool


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", choices=["get", "set"], default="get")
    p.add_argument("--size", type=int, default=1)
    args = p.parse_args()
    keys = [b"key:%012d" % i for i in range(10000)]
    value = b"x" * args.size
    rp = redpool.Redis(port=args.port, shared_pool=False)
    py = redis.Redis(connection_pool=redis.BlockingConnectionPool(port=args.port,
                                                                  max_connections=1, timeout=5))
    for start in range(0, len(keys), 1000):
        pipe = py.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            pipe.set(key, value)
        pipe.execute()
    codec, batches = rp._codec, 100

    def queued(client, i):
        pipe = client.pipeline(transaction=False)
        for j in range(i, i + 100):
            if args.scenario == "set":
                pipe.set(keys[j % len(keys)], value)
            else:
                pipe.get(keys[j % len(keys)])
        return pipe

    def per_command(stage):
        runs = []
        for _ in range(9):
            t0 = time.perf_counter()
            for b in range(batches):
                stage(b)
            runs.append((time.perf_counter() - t0) / batches / 100 * 1e6)
        return min(runs)

    stacks = [queued(rp, b * 100).command_stack for b in range(batches)]
    commands = [codec.native.pack(stack) for stack in stacks]
    replies = [rp._pool.pipeline(c, codec.decode) for c in commands]
    out = {
        "queueing": per_command(lambda b: queued(rp, b * 100)),
        "Codec.pack": per_command(lambda b: codec.native.pack(stacks[b])),
        "native call": per_command(lambda b: rp._pool.pipeline(commands[b], codec.decode)),
        "Codec.shape": per_command(lambda b: codec.native.shape(stacks[b], replies[b], False, True)),
        "whole redpool": per_command(lambda b: queued(rp, b * 100).execute()),
        "whole redis-py": per_command(lambda b: queued(py, b * 100).execute()),
    }
    out["ratio"] = out["whole redis-py"] / out["whole redpool"]
    print(f"{args.scenario} {args.size} B: " + " | ".join(f"{k} {v:.2f}" for k, v in out.items()))
    rp.close()
    py.close()


if __name__ == "__main__":
    main()
