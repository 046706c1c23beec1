"""The `tpkb` console script. It sets up the process, then hands over to bridge.cli.

The cyclic garbage collector is off for the life of the command: a batch builds hundreds
of thousands of small objects, none in a reference cycle, so reference counting frees
them all, and a collector that rescans the heap would cost a third of a large run (and
its catching up after each batch most of the rest). Worker processes do the same.

Pydantic looks for plugins the first time a model is built: it imports importlib.metadata
and scans every installed package's metadata, about a tenth of a one-encounter run.
tpkb uses no pydantic plugin; PYDANTIC_DISABLE_PLUGINS is pydantic's own switch to skip
the scan, and the stand-in loader below answers what pydantic's loader answers under that
switch (no plugins) without importing importlib.metadata."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import types


def _no_plugins() -> None:
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    name = "pydantic.plugin._loader"
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__" and name not in sys.modules:
        stand_in = types.ModuleType(name, "tpkb: pydantic plugins are disabled (bridge/entry.py)")
        stand_in.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules[name] = stand_in


def run() -> None:
    gc.disable()
    _no_plugins()
    from bridge.cli import run as cli_run

    try:
        cli_run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    # Everything is written: leave without tearing the heap down object by object (a tenth
    # of a second after a large batch). Output streams are flushed first.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (tpkb code ... | head)
            stream.flush()
    os._exit(code)
