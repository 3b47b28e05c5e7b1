# Sourced by examples/demo.sh and tests/install_paths.sh: a throwaway redis-server on a free
# 127.0.0.1 port, in a temporary directory, without persistence.
#
#   source examples/throwaway_redis.sh
#   trap stop_throwaway_redis EXIT
#   start_throwaway_redis demo        # exports REDIS_URL=redis://127.0.0.1:<port>/0
#
# Needs redis-server, redis-cli and python3 (to find a free port).

THROWAWAY_REDIS_DIR=""
THROWAWAY_REDIS_PID=""
THROWAWAY_REDIS_PORT=""

# Stops the server (SHUTDOWN NOSAVE, else SIGTERM), reaps it, removes its directory.
stop_throwaway_redis() {
    if [ -n "$THROWAWAY_REDIS_PID" ] && kill -0 "$THROWAWAY_REDIS_PID" 2>/dev/null; then
        redis-cli -h 127.0.0.1 -p "$THROWAWAY_REDIS_PORT" shutdown nosave >/dev/null 2>&1 \
            || kill "$THROWAWAY_REDIS_PID" 2>/dev/null || true
    fi
    if [ -n "$THROWAWAY_REDIS_PID" ]; then
        wait "$THROWAWAY_REDIS_PID" 2>/dev/null || true # reap it: no zombie left behind
    fi
    THROWAWAY_REDIS_PID=""
    if [ -n "$THROWAWAY_REDIS_DIR" ]; then
        rm -rf "$THROWAWAY_REDIS_DIR"
        THROWAWAY_REDIS_DIR=""
    fi
}

# Starts the server (`$1` names it in messages) and exports REDIS_URL; exits on failure.
start_throwaway_redis() {
    local who="$1" attempt ready=""
    THROWAWAY_REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/redpool-$who.XXXXXX")"
    # A free port can be taken by someone else before redis binds it: retry with a new one.
    for attempt in 1 2 3 4 5; do
        THROWAWAY_REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
        redis-server --bind 127.0.0.1 --port "$THROWAWAY_REDIS_PORT" --save '' --appendonly no \
            --dir "$THROWAWAY_REDIS_DIR" --logfile "$THROWAWAY_REDIS_DIR/redis.log" --daemonize no &
        THROWAWAY_REDIS_PID=$!
        for _ in $(seq 100); do # up to ~10 s
            if [ "$(redis-cli -h 127.0.0.1 -p "$THROWAWAY_REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]; then
                ready=1
                break
            fi
            kill -0 "$THROWAWAY_REDIS_PID" 2>/dev/null || break # it exited (port clash?)
            sleep 0.1
        done
        [ -n "$ready" ] && break
        echo "$who: redis-server on port $THROWAWAY_REDIS_PORT did not start (attempt $attempt):" >&2
        tail -n 5 "$THROWAWAY_REDIS_DIR/redis.log" >&2 2>/dev/null || true
        if kill -0 "$THROWAWAY_REDIS_PID" 2>/dev/null; then kill "$THROWAWAY_REDIS_PID" 2>/dev/null || true; fi
        wait "$THROWAWAY_REDIS_PID" 2>/dev/null || true
        THROWAWAY_REDIS_PID=""
    done
    if [ -z "$ready" ]; then
        echo "$who: could not start redis-server" >&2
        exit 1
    fi
    echo "$who: started redis-server $(redis-server --version | sed -n "s/.*v=\([^ ]*\).*/\1/p") on 127.0.0.1:$THROWAWAY_REDIS_PORT (pid $THROWAWAY_REDIS_PID)"
    export REDIS_URL="redis://127.0.0.1:$THROWAWAY_REDIS_PORT/0"
}
