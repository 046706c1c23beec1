"""A worker process of a stream (bridge/stream.py): it loads the KB once, codes the batches
it is sent, one solve each, and hands back each batch's coded records; and it retires
once its memory passes a bound, for the stream to start a fresh one in its place.

Why retire: clingo keeps every symbol it has ever built (each distinct fact and ground
atom: encounter keys with dates, codes, muscle text) in a process-wide table that never
forgets one, so a process that codes batch after batch grows by some kilobytes per
encounter, however the batches are sized. A fresh process starts from the KB alone.

Workers are forked from a server process (multiprocessing's "forkserver") that has
imported the bridge and, where the stream names it, loaded the KB: a fresh worker is ready
in a fraction of a second, not the half second a new interpreter takes."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kb import KB
    from .stream import Coded, Options

KB_VARIABLE = "TPKB_WORKER_KB"  # the KB folder the fork server loads before it forks
_LOADED: dict[str, KB] = {}


def _kb(root: str) -> KB:
    if root not in _LOADED:
        from .api import load_kb

        _LOADED[root] = load_kb(root)
    return _LOADED[root]


def preload() -> None:
    """In the fork server: load the KB named in the environment, so every worker forked
    from it starts with it. A KB that fails to load here is loaded (and its error raised)
    in the worker, where the stream reports it."""
    root = os.environ.get(KB_VARIABLE)
    if root:
        try:
            _warm(_kb(root))
        except Exception:  # noqa: BLE001 - reported by the worker that needs it
            _LOADED.pop(root, None)
    gc.collect()
    gc.freeze()  # the KB's objects are never collected: keep their pages shared with the workers


WARM = (b'{"id": "warm", "date": "2025-06-02", "payer": "cpt", "procedures": [{"muscle": "right upper trapezius", '
        b'"injectate": ["lidocaine 1%"]}], "billed": [{"code": "20552"}]}')


def _warm(kb: KB) -> None:
    """Code one encounter, so that what the first batch builds once (the input model's
    validators, the readers, the program's parts) is built here, shared by every worker."""
    from functools import partial

    from .load import Pending
    from .render import as_json
    from .stream import Options, code_records

    code_records(kb, [Pending("<warm-up>", 1, WARM)], Options(render=partial(as_json, full=False)))


def private_mb() -> float:
    """This process's own memory (not shared with the fork server), in MB (Linux; else its
    resident size)."""
    try:
        with open("/proc/self/smaps_rollup") as rollup:
            return sum(int(line.split()[1]) for line in rollup if line.startswith("Private_")) / 1024
    except (OSError, ValueError, IndexError):
        return rss_mb()


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux; 0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def one_arena() -> None:
    """One malloc arena for the whole process: glibc gives each thread that allocates an
    arena of its own, and memory freed in one is kept there, so a stream's threads (reading,
    handing batches to workers, taking their answers) would each hold on to some."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX


def release_memory() -> None:
    """Collect, and hand the memory a finished batch freed back to the system (glibc keeps
    it otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def serve(conn: Connection, root: str, options: Options, limit_mb: float) -> None:
    """Code each batch sent, and send back (coded records or the exception raised, retiring).
    A batch of None, or the stream closing its end, ends the worker."""
    from .stream import code_records

    gc.disable()  # a worker only codes batches; it collects after each
    try:
        kb: KB | Exception = _kb(root)
    except Exception as exc:  # noqa: BLE001 - sent with the first batch: the stream raises it
        kb = exc
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        result: list[Coded] | Exception
        try:
            result = kb if isinstance(kb, Exception) else code_records(kb, batch, options)
        except Exception as exc:  # noqa: BLE001 - handed back to the stream, which raises it
            result = exc
        del batch
        release_memory()
        retiring = private_mb() > limit_mb
        try:
            try:
                conn.send((result, retiring))
            except (pickle.PicklingError, TypeError, AttributeError):  # an exception that cannot be pickled
                conn.send((RuntimeError(f"{type(result).__name__}: {result}"), retiring))
        except OSError:  # the stream has stopped reading (its reader stopped early)
            return
        if retiring:
            return


def start_server(root: str) -> ForkServerContext:
    """The fork server's context, the server started (once per process) with the bridge
    imported and this KB loaded (bridge/_forkserver.py)."""
    import multiprocessing
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload(["bridge._forkserver"])
    before = os.environ.get(KB_VARIABLE)
    os.environ[KB_VARIABLE] = root
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ[KB_VARIABLE]
        else:
            os.environ[KB_VARIABLE] = before
    return ctx
