"""python -m bridge: the tpkb command."""

from bridge.entry import run

run()
