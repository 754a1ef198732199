"""The PostgreSQL schema, as the list of migrations that builds it.

Entry ``i`` here makes the same change as entry ``i`` of the SQLite list in ``_schema.py``,
so a schema version means the same tables on both databases; a migration added to one is
added to the other with it (``tests/store/test_store.py`` checks that the lists are as long).
The dialect differs only where the databases do: ``BIGSERIAL`` for ``AUTOINCREMENT``,
``BIGINT`` for ids and counters, ``DOUBLE PRECISION`` for ``REAL``, ``BYTEA`` for ``BLOB``,
and the same partial indexes. PostgreSQL has no ``rowid``, so the two tables whose
insertion order the store reads (``executions``, for the latest run of an id: the one created
last, whatever the clocks said; and ``updates``, requested in the same instant) carry an
explicit ``seq BIGSERIAL``.
"""

from __future__ import annotations

# Each entry takes the schema from version i to i + 1. Never edit a released entry: add one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE executions (
            run_id TEXT PRIMARY KEY,
            namespace TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            workflow_type TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            status INTEGER NOT NULL,
            next_event_id BIGINT NOT NULL,
            history_size BIGINT NOT NULL DEFAULT 0,
            start_time DOUBLE PRECISION NOT NULL,
            close_time DOUBLE PRECISION,
            task_timeout DOUBLE PRECISION NOT NULL,
            wft_state INTEGER NOT NULL DEFAULT 0,
            wft_attempt INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            last_failure BYTEA,
            close_event BYTEA,
            memo BYTEA,
            seq BIGSERIAL NOT NULL
        )""",
        "CREATE INDEX executions_by_workflow_id ON executions (namespace, workflow_id, start_time)",
        "CREATE UNIQUE INDEX executions_open ON executions (namespace, workflow_id) "
        "WHERE status = 1",
        "CREATE INDEX executions_by_start ON executions (namespace, start_time)",
        """CREATE TABLE history (
            run_id TEXT NOT NULL,
            event_id BIGINT NOT NULL,
            event_type TEXT NOT NULL,
            event_time DOUBLE PRECISION NOT NULL,
            attributes BYTEA NOT NULL,
            PRIMARY KEY (run_id, event_id)
        )""",
        """CREATE TABLE inbox (
            seq BIGSERIAL PRIMARY KEY,
            run_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            event_time DOUBLE PRECISION NOT NULL,
            attributes BYTEA NOT NULL
        )""",
        "CREATE INDEX inbox_by_run ON inbox (run_id, seq)",
        """CREATE TABLE tasks (
            task_id BIGSERIAL PRIMARY KEY,
            kind INTEGER NOT NULL,
            namespace TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            run_id TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            ref BIGINT NOT NULL,
            visible_at DOUBLE PRECISION NOT NULL,
            lease_seconds DOUBLE PRECISION NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            lease_owner TEXT,
            lease_expires DOUBLE PRECISION,
            deadline DOUBLE PRECISION,
            final_deadline DOUBLE PRECISION,
            heartbeat_timeout DOUBLE PRECISION,
            started_at DOUBLE PRECISION,
            data BYTEA NOT NULL
        )""",
        "CREATE INDEX tasks_ready ON tasks (namespace, task_queue, kind, visible_at) "
        "WHERE lease_owner IS NULL",
        "CREATE INDEX tasks_deadline ON tasks (deadline) WHERE deadline IS NOT NULL",
        "CREATE UNIQUE INDEX tasks_by_ref ON tasks (run_id, kind, ref) WHERE kind IN (1, 2)",
        "CREATE INDEX tasks_by_run ON tasks (run_id)",
        """CREATE TABLE timers (
            run_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            fire_at DOUBLE PRECISION NOT NULL,
            started_event_id BIGINT NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
        "CREATE INDEX timers_due ON timers (fire_at)",
        """CREATE TABLE query_results (
            query_id BIGINT PRIMARY KEY,
            ok INTEGER NOT NULL,
            result BYTEA,
            error TEXT
        )""",
    ],
    [
        "ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE executions ADD COLUMN execution_deadline DOUBLE PRECISION",
        "ALTER TABLE executions ADD COLUMN run_timeout DOUBLE PRECISION",
        "ALTER TABLE executions ADD COLUMN retry_policy BYTEA",
        "ALTER TABLE executions ADD COLUMN first_run_id TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE search_attributes (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value_text TEXT,
            value_num DOUBLE PRECISION,
            value_bool INTEGER
        )""",
        "CREATE INDEX search_attributes_by_run ON search_attributes (run_id, name)",
        "CREATE INDEX search_attributes_by_text ON search_attributes (name, value_text)",
        "CREATE INDEX search_attributes_by_num ON search_attributes (name, value_num)",
        "ALTER TABLE executions ADD COLUMN search_attributes BYTEA",
        """CREATE TABLE search_attribute_types (
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            PRIMARY KEY (namespace, name)
        )""",
        """CREATE TABLE updates (
            run_id TEXT NOT NULL,
            update_id TEXT NOT NULL,
            name TEXT NOT NULL,
            input BYTEA NOT NULL,
            state INTEGER NOT NULL,
            outcome BYTEA,
            requested_at DOUBLE PRECISION NOT NULL,
            seq BIGSERIAL NOT NULL,
            PRIMARY KEY (run_id, update_id)
        )""",
        "CREATE INDEX updates_requested ON updates (run_id, state, requested_at)",
        "ALTER TABLE executions ADD COLUMN parent BYTEA",
        "ALTER TABLE executions ADD COLUMN parent_run_id TEXT",
        "CREATE INDEX executions_by_parent ON executions (parent_run_id) "
        "WHERE parent_run_id IS NOT NULL",
        # An attempt waiting to be completed from outside (raise_complete_async) keeps its
        # lease, but nothing runs: the time-skipping test clock may move past it.
        "ALTER TABLE tasks ADD COLUMN async_pending INTEGER NOT NULL DEFAULT 0",
    ],
    [
        # Runs never asked for an update skip looking for one; a run asked before this
        # migration may still hold one.
        "ALTER TABLE executions ADD COLUMN updates_requested INTEGER NOT NULL DEFAULT 0",
        "UPDATE executions SET updates_requested = 1 WHERE run_id IN (SELECT run_id FROM updates)",
    ],
    [
        # The resets a run took part in (reset from another run, reset into another), for
        # describe().
        "ALTER TABLE executions ADD COLUMN reset_points BYTEA",
    ],
    [
        # Data lifecycle. A namespace's settings: how long closed runs are kept (seconds;
        # NULL keeps them forever) and where their histories are archived before deletion.
        """CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            retention DOUBLE PRECISION,
            archive_uri TEXT
        )""",
        # What the retention sweep looks for: closed runs by the time they closed.
        "CREATE INDEX executions_closed ON executions (namespace, close_time) WHERE status <> 1",
        # The offloaded payloads (external storage) each run's rows refer to, by key, and
        # the keys no run refers to any more, for the workers to delete from the storage.
        """CREATE TABLE payload_refs (
            key TEXT NOT NULL,
            run_id TEXT NOT NULL,
            PRIMARY KEY (key, run_id)
        )""",
        "CREATE INDEX payload_refs_by_run ON payload_refs (run_id)",
        "CREATE TABLE payload_garbage (key TEXT PRIMARY KEY)",
    ],
    [
        # Schedules: one row each; next_fire is when the timer service looks at it again
        # (NULL: not on its own), the rest of its state is in data (see _schedule_state).
        """CREATE TABLE schedules (
            namespace TEXT NOT NULL,
            schedule_id TEXT NOT NULL,
            next_fire DOUBLE PRECISION,
            version BIGINT NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (namespace, schedule_id)
        )""",
        "CREATE INDEX schedules_due ON schedules (next_fire) WHERE next_fire IS NOT NULL",
    ],
    [
        # Listing at scale (a million runs): an index for each usual filter that also holds
        # the listing's order (newest first, run id last), so a page is read in order and
        # stops after page_size rows instead of sorting every match; counts by status read
        # one range of executions_by_status.
        "DROP INDEX executions_by_start",
        "CREATE INDEX executions_by_start ON executions (namespace, start_time, run_id)",
        "DROP INDEX executions_by_workflow_id",
        "CREATE INDEX executions_by_workflow_id ON executions "
        "(namespace, workflow_id, start_time, run_id)",
        "CREATE INDEX executions_by_status ON executions (namespace, status, start_time, run_id)",
        "CREATE INDEX executions_by_type ON executions "
        "(namespace, workflow_type, start_time, run_id)",
        # ORDER BY CloseTime DESC (the recently closed first; open runs, without one, last).
        "CREATE INDEX executions_by_close ON executions "
        "(namespace, close_time DESC NULLS LAST, run_id DESC)",
        # STARTS_WITH is a LIKE 'prefix%': an index in byte order (text_pattern_ops) finds
        # it whatever the database's collation.
        "CREATE INDEX executions_by_id_prefix ON executions "
        "(namespace, workflow_id text_pattern_ops)",
    ],
    [
        # Flow control. A task's priority (1 runs first; 3 when none is given) and, for a
        # task of a fairness key, its pass: the virtual time its key reaches with it
        # (stride scheduling, see _store/_flow.py); tasks of no fairness key keep pass 0.
        # The claim reads the queue in (priority_key, fair_pass, visible_at, task_id) order,
        # so it stays one ordered scan of one index, with no sort.
        "ALTER TABLE tasks ADD COLUMN priority_key INTEGER NOT NULL DEFAULT 3",
        "ALTER TABLE tasks ADD COLUMN fair_pass DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN concurrency_key TEXT",
        "DROP INDEX tasks_ready",
        "CREATE INDEX tasks_ready ON tasks "
        "(namespace, task_queue, kind, priority_key, fair_pass, visible_at, task_id) "
        "WHERE lease_owner IS NULL",
        # The running attempts of each concurrency key (max_concurrent_activities_per_key).
        "CREATE INDEX tasks_running_by_key ON tasks (namespace, task_queue, concurrency_key) "
        "WHERE concurrency_key IS NOT NULL AND lease_owner IS NOT NULL",
        # A run's priority (Temporal's Priority as JSON), which its workflow tasks and, by
        # default, its activities and children take.
        "ALTER TABLE executions ADD COLUMN priority BYTEA",
        # The pass each fairness key of a queue has reached ('' holds the queue's highest).
        """CREATE TABLE fairness (
            namespace TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            kind INTEGER NOT NULL,
            priority_key INTEGER NOT NULL,
            fairness_key TEXT NOT NULL,
            fair_pass DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, task_queue, kind, priority_key, fairness_key)
        )""",
        # A token bucket per queue for max_task_queue_activities_per_second.
        """CREATE TABLE rate_limits (
            namespace TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            tokens DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, task_queue)
        )""",
    ],
    [
        # The store's gauges (metrics): open runs by type, and the few whose last workflow
        # task failed (stuck) in an index that holds only those; both read from the index
        # alone (the columns of their conditions in them, so that SQLite sees it).
        "CREATE INDEX executions_open_by_type ON executions (namespace, workflow_type, status) "
        "WHERE status = 1",
        "CREATE INDEX executions_failing ON executions "
        "(namespace, workflow_type, status, wft_attempt) WHERE status = 1 AND wft_attempt > 1",
    ],
    [
        # Signal idempotency keys (request_id): a signal whose key its workflow id already
        # received is accepted and records nothing. Keyed by workflow id, so a key holds
        # across continue-as-new, retries and resets; each row belongs to the run that took
        # the signal and is deleted with it (retention, delete: found by the key's
        # workflow-id prefix, so no second index to write), so the table holds no more than
        # the signal events of the runs still kept. One index to write per signal.
        """CREATE TABLE signal_requests (
            namespace TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            PRIMARY KEY (namespace, workflow_id, request_id)
        )""",
    ],
    [
        # The next time a waiting task becomes visible (a retry's backoff), for the timer
        # service's next wake-up: one index seek, where tasks_ready, led by the queue, made
        # it read every ready task of every queue (4 ms at 10,000 ready tasks).
        "CREATE INDEX tasks_waiting ON tasks (visible_at) WHERE lease_owner IS NULL",
    ],
    [
        # The latest run of an id (describe, result() and history without a run id, the
        # start's id reuse policy) is the one created last, the highest seq, not the one
        # with the latest start_time: a clock set back between two runs (an NTP step, a
        # second machine with a slower clock) made the older run the latest. ORDER BY seq
        # DESC LIMIT 1 is a backward scan of this index stopped at its first row, however
        # many runs the id has (a cron workflow's). executions_by_workflow_id stays:
        # listings filtered by WorkflowId read it in their start-time order.
        "CREATE INDEX executions_latest ON executions (namespace, workflow_id, seq)",
    ],
    [
        # Whether a run has inputs waiting in the inbox: a workflow task's completion looked
        # there every time (a statement, on PostgreSQL a round trip, twice a workflow), and
        # now only when this says so. The runs with inbox rows at the migration are marked.
        "ALTER TABLE executions ADD COLUMN inputs_buffered INTEGER NOT NULL DEFAULT 0",
        "UPDATE executions SET inputs_buffered = 1 WHERE run_id IN (SELECT run_id FROM inbox)",
        # Whether a run ever started a child: its close looked for open children every time
        # (a statement, a round trip), and now only when this says so. The runs that are
        # some run's parent at the migration are marked.
        "ALTER TABLE executions ADD COLUMN children_started INTEGER NOT NULL DEFAULT 0",
        "UPDATE executions SET children_started = 1 WHERE run_id IN "
        "(SELECT parent_run_id FROM executions WHERE parent_run_id IS NOT NULL)",
    ],
]

LATEST_VERSION = len(MIGRATIONS)
