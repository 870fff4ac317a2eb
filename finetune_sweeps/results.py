"""``ResultSet``: every result of a query, in order, with ``to_pandas`` and ``to_arrow``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from api_schemas.wire import ResultRead
from finetune_sweeps.frames import TypedColumn, result_columns, to_arrow, to_pandas


@dataclass(frozen=True)
class ResultSet(Sequence[ResultRead]):
    """An immutable sequence of ``ResultRead`` (all pages of one query, fetched)."""

    items: tuple[ResultRead, ...]

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> ResultRead: ...
    @overload
    def __getitem__(self, index: slice) -> ResultSet: ...
    def __getitem__(self, index: int | slice) -> ResultRead | ResultSet:
        if isinstance(index, slice):
            return ResultSet(self.items[index])
        return self.items[index]

    def __iter__(self) -> Iterator[ResultRead]:
        return iter(self.items)

    def columns(self) -> list[TypedColumn]:
        """The typed columns that ``to_pandas`` and ``to_arrow`` are built from."""
        return result_columns(self.items)

    def to_pandas(self) -> Any:
        """One row per result: numeric columns float64 / int64 (Int64 with gaps),
        ``regime_theory`` / ``regime_empirical`` / ``status`` / ``workload`` categorical,
        ``finished_at`` UTC datetimes; each parameter and scalar metric a column.
        Needs pandas."""
        return to_pandas(self.columns())

    def to_arrow(self) -> Any:
        """The same columns as a ``pyarrow.Table`` (regimes dictionary-encoded)."""
        return to_arrow(self.columns())
