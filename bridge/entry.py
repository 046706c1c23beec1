"""The `tpkb` console script. It sets up the process, then hands over to bridge.cli.

Pydantic looks for plugins the first time a model is built: it imports importlib.metadata
and scans every installed package's metadata, about a tenth of a one-encounter run.
tpkb uses no pydantic plugin; PYDANTIC_DISABLE_PLUGINS is pydantic's own switch to skip
the scan, and the stand-in loader below answers what pydantic's loader answers under that
switch (no plugins) without importing importlib.metadata."""

from __future__ import annotations

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
    _no_plugins()
    from bridge.cli import run as cli_run

    cli_run()
