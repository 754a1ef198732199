"""What workflow code must not do, and what to do instead: one table, read by two checkers.

Workflow code is replayed from history after a crash, so it must make the same decisions each
time it runs. Two checkers hold it to that, both from the rows below:

- the runtime guard (``perdure._runtime._guard``) watches the calls workflow code makes while
  it runs, and refuses those of the rows marked ``watched``;
- the linter (``perdure.lint``) reads the source of workflow classes and flags every row's
  names, including those the guard only catches further down (``requests.get`` ends in
  ``socket.getaddrinfo``) or cannot see at all (``os.environ``, iterating over a set).

Names are written as user code imports them (``"concurrent.futures.ThreadPoolExecutor"``); an
owner that is a class has its methods listed, and calling the class itself constructs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of non-deterministic code: its lint code and the replay-safe alternative."""

    code: str
    advice: str  # completes "... is not replay-safe: <advice>"


CLOCK: Final = Rule("DET001", "use workflow.now(), workflow.time() or workflow.time_ns() instead")
DATE: Final = Rule("DET001", "use workflow.now() instead")
SLEEP: Final = Rule(
    "DET002", "use await asyncio.sleep(...) or await workflow.sleep(...) (a durable timer)"
)
RANDOM: Final = Rule("DET003", "use workflow.random() instead")
UUID: Final = Rule("DET004", "use workflow.uuid4() instead")
FILE_IO: Final = Rule("DET005", "do I/O in an activity")
NETWORK: Final = Rule("DET006", "do network calls in an activity")
THREADS: Final = Rule(
    "DET007", "use asyncio tasks instead (workflow code runs on a deterministic event loop)"
)
PROCESSES: Final = Rule("DET008", "run processes in an activity")
ENVIRONMENT: Final = Rule("DET009", "pass the value as workflow input, or read it in an activity")
SET_ORDER: Final = Rule(
    "DET010",
    "iterate over sorted(...) instead (a set's order can change from one process to the next)",
)
ASYNCIO_SETS: Final = Rule(
    "DET010",
    "use workflow.wait(...) or workflow.as_completed(...) instead (asyncio's versions keep "
    "tasks in sets, whose order can change from one process to the next)",
)

RULES: Final = (
    CLOCK,
    DATE,
    SLEEP,
    RANDOM,
    UUID,
    FILE_IO,
    NETWORK,
    THREADS,
    PROCESSES,
    ENVIRONMENT,
    SET_ORDER,
    ASYNCIO_SETS,
)


@dataclass(frozen=True, slots=True)
class Forbidden:
    """Attributes of one module or class that workflow code must not use.

    Attributes:
        owner: the module or class, as user code imports it (``"random.SystemRandom"``);
            ``"builtins"`` for built-in functions.
        names: its forbidden attributes; empty means every attribute of a module (the linter
            alone reads such rows).
        rule: what kind of code this is, and what to do instead.
        watched: the runtime guard refuses these calls while workflow code runs. Rows that
            are not watched are for the linter: the guard catches what they call (an HTTP
            client's socket), watches them another way (every ``datetime.date`` subclass's
            ``now``), or cannot see them (``os.environ`` is not a call).
        value: the names are values, not functions: reading one is the problem
            (``os.environ``), not only calling it.
        without_arguments: only a call without arguments is forbidden (an unseeded
            ``random.Random()``; ``time.localtime()`` of now, not of a given time).
    """

    owner: str
    names: tuple[str, ...]
    rule: Rule
    watched: bool = True
    value: bool = False
    without_arguments: bool = False


# The ``datetime.date`` and ``datetime.datetime`` classmethods that read the clock.
CLOCK_CLASSMETHODS: Final = ("now", "utcnow", "today")

_RANDOM_FUNCTIONS: Final = (
    "betavariate",
    "binomialvariate",
    "choice",
    "choices",
    "expovariate",
    "gammavariate",
    "gauss",
    "getrandbits",
    "getstate",
    "lognormvariate",
    "normalvariate",
    "paretovariate",
    "randbytes",
    "randint",
    "random",
    "randrange",
    "sample",
    "seed",
    "setstate",
    "shuffle",
    "triangular",
    "uniform",
    "vonmisesvariate",
    "weibullvariate",
    "SystemRandom",
)

FORBIDDEN: Final[tuple[Forbidden, ...]] = (
    # -- the clock
    Forbidden(
        "time",
        (
            "time",
            "time_ns",
            "monotonic",
            "monotonic_ns",
            "perf_counter",
            "perf_counter_ns",
            "process_time",
            "process_time_ns",
            "thread_time",
            "thread_time_ns",
            "clock_gettime",
            "clock_gettime_ns",
        ),
        CLOCK,
    ),
    Forbidden(
        "time", ("localtime", "gmtime", "ctime"), CLOCK, watched=False, without_arguments=True
    ),
    Forbidden("time", ("sleep",), SLEEP),
    Forbidden("datetime.datetime", CLOCK_CLASSMETHODS, DATE, watched=False),
    Forbidden("datetime.date", ("today",), DATE, watched=False),
    # -- randomness (the guard watches the random module through the C methods beneath it)
    Forbidden("random", _RANDOM_FUNCTIONS, RANDOM, watched=False),
    Forbidden("random", ("Random",), RANDOM, watched=False, without_arguments=True),
    Forbidden("random.SystemRandom", ("random", "getrandbits", "randbytes"), RANDOM),
    Forbidden("os", ("urandom", "getrandom"), RANDOM),
    Forbidden("secrets", (), RANDOM, watched=False),
    Forbidden("uuid", ("uuid1", "uuid4"), UUID),
    # -- files
    Forbidden("builtins", ("open",), FILE_IO),
    Forbidden("builtins", ("input",), FILE_IO, watched=False),
    Forbidden("io", ("open_code",), FILE_IO),
    Forbidden("io", ("open",), FILE_IO, watched=False),  # the builtin open, watched as such
    Forbidden(
        "os",
        ("open", "listdir", "scandir", "remove", "unlink", "rename", "replace", "mkdir", "rmdir"),
        FILE_IO,
    ),
    Forbidden("os", ("walk", "makedirs", "removedirs", "stat"), FILE_IO, watched=False),
    Forbidden(
        "os.path",
        ("exists", "getmtime", "getsize", "isdir", "isfile", "islink", "lexists"),
        FILE_IO,
        watched=False,
    ),
    Forbidden(
        "pathlib.Path",
        (
            "exists",
            "glob",
            "is_dir",
            "is_file",
            "iterdir",
            "mkdir",
            "open",
            "read_bytes",
            "read_text",
            "rename",
            "replace",
            "rglob",
            "rmdir",
            "stat",
            "touch",
            "unlink",
            "write_bytes",
            "write_text",
        ),
        FILE_IO,
        watched=False,
    ),
    Forbidden("shutil", (), FILE_IO, watched=False),
    Forbidden("tempfile", (), FILE_IO, watched=False),
    Forbidden("glob", (), FILE_IO, watched=False),
    # -- the network
    Forbidden(
        "socket",
        (
            "socket",
            "create_connection",
            "getaddrinfo",
            "gethostbyname",
            "gethostbyname_ex",
            "gethostbyaddr",
            "getnameinfo",
        ),
        NETWORK,
    ),
    Forbidden("_socket", ("getaddrinfo",), NETWORK),  # beneath socket.getaddrinfo
    Forbidden(
        "asyncio",
        ("open_connection", "start_server", "open_unix_connection", "start_unix_server"),
        NETWORK,
        watched=False,
    ),
    *(
        Forbidden(client, (), NETWORK, watched=False)
        for client in ("urllib.request", "http.client", "requests", "httpx", "aiohttp", "urllib3")
    ),
    # -- threads
    Forbidden("threading.Thread", ("start",), THREADS),
    Forbidden("threading", ("Thread", "Timer"), THREADS, watched=False),
    Forbidden("_thread", ("start_new_thread", "start_joinable_thread"), THREADS),
    Forbidden("concurrent.futures.ThreadPoolExecutor", ("submit",), THREADS),
    Forbidden("concurrent.futures.ProcessPoolExecutor", ("submit",), THREADS),
    Forbidden(
        "concurrent.futures",
        ("ThreadPoolExecutor", "ProcessPoolExecutor"),
        THREADS,
        watched=False,
    ),
    Forbidden("asyncio", ("to_thread",), THREADS, watched=False),
    # -- processes
    Forbidden("subprocess", ("Popen",), PROCESSES),
    Forbidden("subprocess", (), PROCESSES, watched=False),
    Forbidden(
        "os",
        ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve"),
        PROCESSES,
    ),
    Forbidden("os", ("popen",), PROCESSES, watched=False),
    Forbidden("multiprocessing", (), PROCESSES, watched=False),
    Forbidden(
        "asyncio", ("create_subprocess_exec", "create_subprocess_shell"), PROCESSES, watched=False
    ),
    # -- set order
    Forbidden("asyncio", ("wait", "as_completed"), ASYNCIO_SETS, watched=False),
    # -- the environment
    Forbidden("os", ("getenv", "getenvb", "putenv", "unsetenv"), ENVIRONMENT, watched=False),
    Forbidden("os", ("environ", "environb"), ENVIRONMENT, watched=False, value=True),
)
