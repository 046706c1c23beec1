"""python -m bridge: the tpkb command."""

from .cli import run

run()
