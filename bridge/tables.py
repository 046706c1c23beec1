"""Reference tables (kb/reference/*.lp): read once when the KB is compiled, kept as
Python rows, and given to each batch as only the rows it can use.

A table whose %*! documentation is followed by `%@ keys: A, B` is keyed: a batch gets
the rows whose A and B values are "in play", that is, occur in the batch's facts or
anywhere in the program (rule text and the unkeyed tables: every code the KB can derive
is written there). The NCCI pair and MUE tables are keyed by code, so a batch billing
three codes reads a few dozen of their 23,000 rows instead of all of them. This rests on
one property of the rules, checked by tests/test_tables.py on the whole library and on
random batches: a keyed row is only ever joined with values already in play, never used
to bring a new value in.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field

from .terms import Atom, strings

Signature = tuple[str, int]


@dataclass
class Table:
    signature: Signature
    file: str
    line: int
    rows: list[Atom] = field(default_factory=list)
    keys: tuple[int, ...] = ()  # positions in the row tuple (1 = first argument)

    @property
    def name(self) -> str:
        return self.signature[0]


@dataclass
class Tables:
    """Every table of a KB. A keyed table's rows are kept only in `index`, by the value of
    its first key, each bucket of rows pickled on its own: loading the cached KB then reads
    one small bytes object per key instead of building every row, and a batch unpickles
    only the buckets it uses."""

    tables: dict[Signature, Table]
    program_strings: frozenset[str]
    always: list[Atom] = field(default_factory=list)
    known: frozenset[str] = frozenset()
    index: dict[Signature, dict[object, bytes]] = field(default_factory=dict)
    _buckets: dict[tuple[Signature, object], list[Atom]] = field(default_factory=dict, repr=False, compare=False)
    _by_name: dict[str, list[Atom]] = field(default_factory=dict, repr=False, compare=False)
    _by_value: dict[tuple[str, int], dict[object, list[Atom]]] = field(default_factory=dict, repr=False,
                                                                         compare=False)

    def __post_init__(self) -> None:
        known = set(self.program_strings)
        interned: dict[str, str] = {}
        for table in self.tables.values():
            # one object per distinct string: a smaller cache, loaded faster
            rows = [tuple(interned.setdefault(v, v) if type(v) is str else v for v in row) for row in table.rows]
            if table.keys:
                by_value: dict[object, list[Atom]] = {}
                for row in rows:
                    by_value.setdefault(row[table.keys[0]], []).append(row)
                self.index[table.signature] = {k: pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
                                               for k, v in by_value.items()}
                table.rows = []
            else:
                table.rows = rows
                self.always.extend(rows)
                known.update(strings(row[1:] for row in rows))
        self.known = frozenset(known)

    def names(self) -> frozenset[str]:
        return frozenset(sig[0] for sig in self.tables)

    def rows(self, name: str) -> list[Atom]:
        """Every row of the table(s) of predicate `name`."""
        rows = self._by_name.get(name)
        if rows is None:
            rows = self._by_name[name] = [row for table in self.tables.values() if table.name == name
                                          for row in self._rows(table)]
        return rows

    def rows_by(self, name: str, position: int) -> dict[object, list[Atom]]:
        """Every row of predicate `name`, by its value at `position` (1 = first argument):
        built on first use and kept, as the tables never change."""
        index = self._by_value.get((name, position))
        if index is None:
            index = self._by_value[(name, position)] = {}
            for row in self.rows(name):
                if len(row) > position:
                    index.setdefault(row[position], []).append(row)
        return index

    def all_rows(self) -> Iterable[Atom]:
        for table in self.tables.values():
            yield from self._rows(table)

    def _rows(self, table: Table) -> Iterable[Atom]:
        if table.keys:
            for value in self.index[table.signature]:
                yield from self._bucket(table.signature, value)
        else:
            yield from table.rows

    def _bucket(self, sig: Signature, value: object) -> list[Atom]:
        rows = self._buckets.get((sig, value))
        if rows is None:
            rows = self._buckets[(sig, value)] = pickle.loads(self.index[sig][value])
        return rows

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_buckets": {}, "_by_name": {}}

    def for_batch(self, batch_values: set) -> list[Atom]:
        """The rows a batch can use: every unkeyed row, and the keyed rows whose key values
        are all in play (in the batch's facts, the program or an unkeyed table). Sorted, so
        that the same batch always grounds the same way."""
        out = list(self.always)
        play = batch_values | self.known
        for sig, by_value in self.index.items():
            rest = self.tables[sig].keys[1:]
            for value in sorted(by_value.keys() & play, key=str):
                out.extend(row for row in self._bucket(sig, value) if all(row[k] in play for k in rest))
        return out
