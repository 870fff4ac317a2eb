"""Result rows as typed columns, and those columns as a pandas DataFrame or an Arrow table.

``result_columns`` is pure (stdlib only): one column per result field and per parameter,
each with a kind that fixes its dtype: ``int`` (nullable Int64 / int64), ``float``
(float64, missing as NaN), ``bool`` (nullable boolean), ``category`` (regimes I–IV,
statuses, workloads), ``str`` and ``datetime`` (UTC).  pandas and pyarrow are imported
only inside ``to_pandas`` / ``to_arrow``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api_schemas.wire import REGIMES, TRIAL_STATUSES, ResultRead
from api_schemas.workloads import TYPED_PARAMETERS

Kind = Literal["int", "float", "bool", "category", "str", "datetime"]

# Result fields in the order the export uses; params come after the identity columns.
IDENTITY: tuple[tuple[str, Kind], ...] = (
    ("trial_id", "int"),
    ("key", "str"),
    ("workload", "category"),
    ("status", "category"),
    ("seed", "int"),
)
MEASURES: tuple[tuple[str, Kind], ...] = (
    ("gen_error_sim", "float"),
    ("gen_error_theory", "float"),
    ("gen_error_asymptotic", "float"),
    ("residual_theory", "float"),
    ("residual_asymptotic", "float"),
    ("regime_theory", "category"),
    ("regime_empirical", "category"),
    ("l_order_theory", "float"),
    ("pd_theory", "float"),
    ("l_order_empirical", "float"),
    ("pd_empirical", "float"),
    ("diverged", "bool"),
    ("stop_reason", "str"),
    ("finished_at", "datetime"),
)
INTEGER_PARAMETERS = frozenset({"D", "seed"})  # the integer columns of the result filters
CATEGORIES: dict[str, tuple[str, ...]] = {
    "regime_theory": REGIMES,
    "regime_empirical": REGIMES,
    "status": TRIAL_STATUSES,
}


@dataclass(frozen=True)
class TypedColumn:
    """One column: its name, its kind and one value per row (``None`` = missing)."""

    name: str
    kind: Kind
    values: tuple[Any, ...]


def _kind_of(name: str, values: Sequence[Any]) -> Kind:
    """The typed integer parameters (D, seed) are ints, the other typed ones floats;
    otherwise ints if every value is one, floats if every value is a number, bools if
    every value is one, else strings."""
    if name in INTEGER_PARAMETERS:
        return "int"
    if name in TYPED_PARAMETERS:
        return "float"
    present = [v for v in values if v is not None]
    if not present:
        return "float"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "int" if all(isinstance(v, int) for v in present) else "float"
    return "str"


def result_columns(results: Sequence[ResultRead]) -> list[TypedColumn]:
    """Identity, then every parameter seen in any row, then the measures, then every
    scalar metric as ``metric_<name>``.  A parameter whose name is taken by a result
    field gets the prefix ``param_``."""
    taken = {name for name, _ in IDENTITY + MEASURES}
    param_names = list(dict.fromkeys(name for r in results for name in r.params))
    metric_names = list(
        dict.fromkeys(
            name
            for r in results
            for name, value in r.metrics.items()
            if isinstance(value, int | float | str | bool) or value is None
        )
    )
    columns = [TypedColumn(n, k, tuple(getattr(r, n) for r in results)) for n, k in IDENTITY]
    for name in param_names:
        values = tuple(r.params.get(name) for r in results)
        column = f"param_{name}" if name in taken else name
        columns.append(TypedColumn(column, _kind_of(name, values), values))
    columns += [TypedColumn(n, k, tuple(getattr(r, n) for r in results)) for n, k in MEASURES]
    for name in metric_names:
        values = tuple(r.metrics.get(name) for r in results)
        columns.append(TypedColumn(f"metric_{name}", _kind_of(name, values), values))
    return columns


def categories_of(column: TypedColumn) -> list[str]:
    """The fixed categories of a column, or the sorted values seen."""
    known = CATEGORIES.get(column.name)
    if known is not None:
        return list(known)
    return sorted({str(v) for v in column.values if v is not None})


def to_pandas(columns: Sequence[TypedColumn]) -> Any:
    """A ``pandas.DataFrame`` with one dtype per kind (see the module docstring)."""
    import pandas as pd

    data: dict[str, Any] = {}
    for column in columns:
        values = list(column.values)
        if column.kind == "float":
            data[column.name] = pd.Series(
                [float("nan") if v is None else float(v) for v in values], dtype="float64"
            )
        elif column.kind == "int":
            dtype = "Int64" if None in values else "int64"
            data[column.name] = pd.Series(values, dtype=dtype)
        elif column.kind == "bool":
            data[column.name] = pd.Series(values, dtype="boolean")
        elif column.kind == "category":
            data[column.name] = pd.Categorical(values, categories=categories_of(column))
        elif column.kind == "datetime":
            data[column.name] = pd.to_datetime(pd.Series(values, dtype="object"), utc=True)
        else:
            data[column.name] = pd.Series(
                [None if v is None else str(v) for v in values], dtype="object"
            )
    return pd.DataFrame(data)


def to_arrow(columns: Sequence[TypedColumn]) -> Any:
    """A ``pyarrow.Table``: int64, float64, bool, dictionary<int32, string>, string and
    timestamp[us, UTC] columns; missing values are nulls."""
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    for column in columns:
        values = list(column.values)
        if column.kind == "float":
            arrays[column.name] = pa.array(
                [None if v is None else float(v) for v in values], pa.float64()
            )
        elif column.kind == "int":
            arrays[column.name] = pa.array(values, pa.int64())
        elif column.kind == "bool":
            arrays[column.name] = pa.array(values, pa.bool_())
        elif column.kind == "category":
            dictionary = pa.array(categories_of(column), pa.string())
            index = {name: i for i, name in enumerate(dictionary.to_pylist())}
            indices = pa.array([None if v is None else index[str(v)] for v in values], pa.int32())
            arrays[column.name] = pa.DictionaryArray.from_arrays(indices, dictionary)
        elif column.kind == "datetime":
            arrays[column.name] = pa.array(values, pa.timestamp("us", tz="UTC"))
        else:
            arrays[column.name] = pa.array(
                [None if v is None else str(v) for v in values], pa.string()
            )
    return pa.table(arrays)
