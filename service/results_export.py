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
from service.store.result_filters import ExportQuery
from service.store.results import iter_export_chunks

_STRING, _FLOAT, _INT = pa.string(), pa.float64(), pa.int64()
# Column order and Parquet types; the CSV header uses the same names.
SCHEMA = pa.schema(
    [
        ("trial_id", _INT),
        ("key", _STRING),
        ("workload", _STRING),
        ("c_pt", _FLOAT),
        ("lambda_pt", _FLOAT),
        ("gamma_ft", _FLOAT),
        ("rho_pt", _FLOAT),
        ("rho_ft", _FLOAT),
        ("omega", _FLOAT),
        ("alpha", _FLOAT),
        ("a_pt", _FLOAT),
        ("sigma0", _FLOAT),
        ("D", _INT),
        ("seed", _INT),
        ("status", _STRING),
        ("gen_error_sim", _FLOAT),
        ("gen_error_theory", _FLOAT),
        ("gen_error_asymptotic", _FLOAT),
        ("residual_theory", _FLOAT),
        ("residual_asymptotic", _FLOAT),
        ("regime_theory", _STRING),
        ("regime_empirical", _STRING),
        ("l_order_theory", _FLOAT),
        ("pd_theory", _FLOAT),
        ("l_order_empirical", _FLOAT),
        ("pd_empirical", _FLOAT),
        ("classifier_version", _STRING),
        ("diverged", pa.bool_()),
        ("stop_reason", _STRING),
        ("wall_time_s", _FLOAT),
        ("device", _STRING),
        ("dtype", _STRING),
        ("code_version", _STRING),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("params", _STRING),
        ("metrics", _STRING),
    ]
)
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
_JSON_COLUMNS = ("params", "metrics")
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
        elif name == "finished_at":
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
