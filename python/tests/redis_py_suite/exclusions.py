"""redis-py 8.1's tests that ``plugin.py`` skips, by pytest node id, each with the reason.

Three kinds, and only these: tests that look inside redis-py's own connection objects (no
drop-in has them), tests that fail with redis-py itself against Redis 7.0, and the known
differences the README lists (redpool behaves otherwise on purpose, or lacks the feature yet).
"""

_COMMANDS = "tests/test_commands.py::TestRedisCommands::"
_PIPELINE = "tests/test_pipeline.py::TestPipeline::"

#: Replaces ``r.connection`` with a ``Mock`` of redis-py's ``Connection`` that answers every read
#: (the ``mock_cluster_resp_*`` fixtures): no server is involved, and redpool has no such object.
_MOCKED_CONNECTION = "mocks redis-py's Connection object (r.connection), which redpool does not have"

#: Fail with redis-py's own client against Redis 7.0 (they expect a newer server's replies).
_FAILS_WITH_REDIS_PY = "fails with redis-py itself against Redis 7.0 (expects a newer server)"

EXCLUDED = {
    **{
        _COMMANDS + name: _MOCKED_CONNECTION
        for name in (
            "test_cluster_addslots",
            "test_cluster_count_failure_reports",
            "test_cluster_countkeysinslot",
            "test_cluster_delslots",
            "test_cluster_failover",
            "test_cluster_forget",
            "test_cluster_info",
            "test_cluster_keyslot",
            "test_cluster_meet",
            "test_cluster_nodes",
            "test_cluster_replicate",
            "test_cluster_reset",
            "test_cluster_saveconfig",
            "test_cluster_setslot",
            "test_cluster_slaves",
            "test_readonly",
        )
    },
    _COMMANDS + "test_slowlog_get": "replaces redis-py's parse_response(connection, ...), which "
    "redpool does not call (replies are read by the core)",
    _COMMANDS + "test_interrupted_command": "patches r.connection._parser, redis-py's socket "
    "reader, which redpool does not have",
    _COMMANDS + "test_acl_getuser_setuser": _FAILS_WITH_REDIS_PY,
    _COMMANDS + "test_acl_log": _FAILS_WITH_REDIS_PY,
    _COMMANDS + "test_xgroup_create_entriesread": _FAILS_WITH_REDIS_PY,
    # Known differences (README, Python section, "Compatibility, tested"):
    _COMMANDS + "test_client_reply": "known difference: CLIENT REPLY OFF returns at once (the "
    "core knows no reply comes) where redis-py waits for one and times out",
    _PIPELINE + "test_watch_exec_no_unwatch": "known difference: uses monitor(), not offered "
    "yet; and a connection returned to the pool is always sent UNWATCH (never trusted to be clean)",
    _PIPELINE + "test_watch_reset_unwatch": "known difference: uses monitor(), not offered yet",
    _PIPELINE + "test_pipeline_discard": "known difference: DISCARD queued inside a transaction "
    "is refused (ConfigError) where redis-py sends it and then runs the commands queued after it "
    "outside any transaction",
}
