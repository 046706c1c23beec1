"""Imported by the fork server of a stream's worker processes (bridge/worker.py) and by no
one else: the bridge imported and the stream's KB loaded once, before any worker forks."""

from . import render, stream, worker  # noqa: F401 - imported for the workers to inherit

worker.preload()
