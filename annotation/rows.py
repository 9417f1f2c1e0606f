"""Reading import files as a stream of rows: JSON Lines (plain or gzipped) and Parquet, from a path or from bytes.

Every reader yields ``(row number, object)`` pairs, 1-based, or ``(row number, RowError)`` for a row that is not a
JSON object's text; memory is bounded by one Parquet batch or one line, never the file. A :class:`RowSource` can
be read more than once, so an import can check every row before writing any (the task importer reads twice).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_BATCH = 1000
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")


class RowError(ValueError):
    """One row could not be read; the message says why (the row number travels beside it)."""


def decode_line(line: str | bytes, number: int) -> str:
    """A line as text: UTF-8, a byte-order mark dropped from the first line."""
    if isinstance(line, bytes):
        try:
            return line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise RowError(f"not valid UTF-8 (byte {exc.start})") from None
    return line.lstrip("\ufeff") if number == 1 else line


def jsonl_rows(lines: Iterable[str | bytes]) -> Iterator[tuple[int, Any]]:
    """Decoded JSON values of non-blank lines, numbered from 1 as a text editor does (blank lines count)."""
    for number, line in enumerate(lines, start=1):
        try:
            raw = decode_line(line, number)
            if not raw.strip():
                continue
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, RowError(f"invalid JSON: {exc.msg} (column {exc.colno})")
        except RowError as exc:
            yield number, exc


def parquet_rows(source: str | Path | IO[bytes]) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq  # loaded on use: commands and web processes start without it

    number = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=PARQUET_BATCH):
        for obj in batch.to_pylist():
            number += 1
            yield number, obj


@dataclass
class RowSource:
    """A re-readable import file: a path on disk, or bytes already in memory (an API upload, bounded by
    DATA_UPLOAD_MAX_MEMORY_SIZE), or lines (tests)."""

    path: Path | None = None
    data: bytes | None = None
    lines: list | None = None

    @classmethod
    def of(cls, source: str | bytes | Path | IO | Iterable) -> RowSource:
        if isinstance(source, Path):
            return cls(path=source)
        if isinstance(source, bytes):
            return cls(data=source)
        if isinstance(source, str):
            return cls(data=source.encode("utf-8", "surrogatepass"))
        temporary = getattr(source, "temporary_file_path", None)  # a large upload Django spooled to disk
        if callable(temporary):
            return cls(path=Path(temporary()))
        if hasattr(source, "read"):
            data = source.read()
            return cls(data=data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        return cls(lines=list(source))

    @property
    def is_parquet(self) -> bool:
        if self.path is not None:
            return self.path.name.lower().endswith(".parquet")
        return self.data is not None and self.data[:4] == PARQUET_MAGIC

    @property
    def size(self) -> int | None:
        """Bytes to read, for progress (None when unknown)."""
        if self.path is not None:
            return self.path.stat().st_size
        return len(self.data) if self.data is not None else None

    def fingerprint(self) -> tuple | None:
        """Size and modification time of a file on disk (a second pass must read what the first one checked)."""
        if self.path is None:
            return None
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

    def check(self) -> None:
        """Raise RowError for a path that cannot be read as an import file."""
        if self.path is None:
            return
        if not self.path.is_file():
            raise RowError(f"no such file: {self.path}")
        name = self.path.name.lower()
        if not (name.endswith(".parquet") or name.endswith(JSONL_SUFFIXES)):
            raise RowError(f"{self.path.name}: import reads .jsonl, .jsonl.gz or .parquet files")

    def rows(self) -> Iterator[tuple[int, Any]]:
        """Every row, from the start (call again for another pass)."""
        if self.lines is not None:
            return jsonl_rows(self.lines)
        if self.is_parquet:
            return parquet_rows(self.path if self.path is not None else io.BytesIO(self.data))
        if self.path is not None:
            return self._file_rows()
        data = self.data
        if data[:2] == GZIP_MAGIC:
            return jsonl_rows(gzip.GzipFile(fileobj=io.BytesIO(data)))
        return jsonl_rows(data.splitlines())

    def _file_rows(self) -> Iterator[tuple[int, Any]]:
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        with opener(self.path, "rb") as fh:
            yield from jsonl_rows(fh)
