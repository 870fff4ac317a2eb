"""Streamed result exports: CSV written chunk by chunk, Parquet written in record batches
to a spooled temporary file and then streamed.  Rows come from
``service.store.results.iter_export_chunks`` (keyset iteration, never the whole table
in memory); this module only encodes them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from service.export_stream import guarded, prefetched
from service.store.result_filters import INTEGER_COLUMNS, PARAM_COLUMNS, ExportQuery
from service.store.results import EXPORT_COLUMNS, iter_export_chunks

# Parquet types by column kind; JSON columns are written as compact JSON text.
_ARROW_TYPES = {
    "float": pa.float64(),
    "int": pa.int64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
_IDENTITY = (("trial_id", "int"), ("key", "str"), ("workload", "str"))
_PARAM_KINDS = {name: "int" if name in INTEGER_COLUMNS else "float" for name in PARAM_COLUMNS}


def _export_schema() -> pa.Schema:
    """Column order and types of the export (``results.export_columns``' order), from
    the column definitions: identity, typed parameters, status, result columns."""
    scalars = [(c.name, c.kind) for c in EXPORT_COLUMNS if c.kind != "json"]
    documents = [(c.name, c.kind) for c in EXPORT_COLUMNS if c.kind == "json"]
    kinds = [
        *_IDENTITY,
        *_PARAM_KINDS.items(),
        ("status", "str"),
        *scalars,
        ("params", "json"),
        *documents,
    ]
    return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in kinds])


SCHEMA = _export_schema()
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
_JSON_COLUMNS = ("params", *(c.name for c in EXPORT_COLUMNS if c.kind == "json"))
_TIME_COLUMNS = tuple(c.name for c in EXPORT_COLUMNS if c.kind == "datetime")
_SPOOL_BYTES = 64 * 1024 * 1024
_READ_BYTES = 1024 * 1024
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_stream(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """A header line, then one encoded block per chunk of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue().encode()
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        for row in chunk:
            for name in _JSON_COLUMNS:
                row[name] = _json(row[name])
            writer.writerow([_csv_cell(row[name]) for name in COLUMNS])
        yield buffer.getvalue().encode()


def _record_batch(chunk: list[dict[str, Any]]) -> pa.RecordBatch:
    arrays = {}
    for name in COLUMNS:
        values = [row[name] for row in chunk]
        if name in _JSON_COLUMNS:
            values = [_json(value) for value in values]
        elif name in _TIME_COLUMNS:
            values = [value.astimezone(UTC) if value else None for value in values]
        arrays[name] = values
    return pa.RecordBatch.from_pydict(arrays, schema=SCHEMA)


def parquet_stream(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """One row group per chunk, spooled (memory, then disk past 64 MiB), then streamed.

    Parquet's footer is written last, so the file cannot go out before it is complete.
    """
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        writer = pq.ParquetWriter(spool, SCHEMA, compression="zstd")
        try:
            for chunk in chunks:
                writer.write_batch(_record_batch(chunk))
        finally:
            writer.close()
        spool.seek(0)
        while data := spool.read(_READ_BYTES):
            yield data


def export_response(
    session_factory: sessionmaker[Session], query: ExportQuery
) -> StreamingResponse:
    """A streamed CSV or Parquet download of every row ``query`` covers.

    The first chunk is read (and a Parquet file written whole) before the response
    starts, so those failures are ordinary error responses; a later one ends the body
    with a trailer and an aborted transfer (``service.export_stream``).
    """
    chunks = prefetched(iter_export_chunks(session_factory, query))
    if query.format == "csv":
        body = guarded(csv_stream(chunks), "csv export")
    else:
        body = guarded(prefetched(parquet_stream(chunks)), "parquet export")
    sweep = re.sub(r"[^A-Za-z0-9_.-]", "", query.filter.sweep_id or "")
    stem = f"results-{sweep}" if sweep else "results"
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[query.format],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{query.format}"'},
    )
