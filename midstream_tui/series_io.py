"""Reading numeric series (and token sequences) from files for `analyze` and `compare`.

Formats, by extension:
  .npy    a 1-D array, or a column of a 2-D array (``column`` = index)
  .csv    a header row is optional; ``column`` = name or index (default: first numeric column)
  .jsonl  one number per line, or one object per line (``column`` = key, default: first number)
  .txt    numbers separated by white space; with ``tokens=True``, words (compared by identity)
Every problem is a ``SeriesError`` with the file, line and what to do.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from pathlib import Path

import numpy as np

from .analysis.validate import SeriesError, as_series

_WORD = re.compile(r"\w+|[^\w\s]")


def load_series(path: str, column: str | None = None, tokens: bool = False) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise SeriesError(f"{path}: no such file")
    ext = p.suffix.lower()
    try:
        if tokens:
            words = _WORD.findall(p.read_text("utf-8", errors="replace"))
            return np.array([zlib.crc32(w.lower().encode()) for w in words], dtype=np.float64)
        if ext == ".npy":
            return _npy(p, column)
        if ext == ".csv":
            return _csv(p, column)
        if ext in (".jsonl", ".ndjson"):
            return _jsonl(p, column)
        if ext in (".txt", ".dat", ""):
            return as_series(np.array(p.read_text("utf-8").split(), dtype=np.float64), path, finite=False)
    except SeriesError as exc:
        raise SeriesError(f"{path}: {exc}") from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, EOFError, OSError, csv.Error) as exc:
        # what a malformed file makes numpy, csv or json raise: one line, with the file's name
        raise SeriesError(f"{path}: not a readable {ext or 'text'} series ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:120] if str(exc) else 'empty'})") from None
    raise SeriesError(f"{path}: unknown format {ext!r}: use .npy, .csv, .jsonl or .txt")


def _npy(p: Path, column: str | None) -> np.ndarray:
    a = np.load(p, allow_pickle=False)
    if a.ndim == 2 and a.shape[1] > 1:
        a = a[:, int(column) if column is not None else 0]
    return as_series(a, "array", finite=False)


def _csv(p: Path, column: str | None) -> np.ndarray:
    with p.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise SeriesError("empty file")

    def numeric(v: str) -> bool:
        try:
            float(v)
            return True
        except ValueError:
            return False

    header = None if all(numeric(v) for v in rows[0]) else rows[0]
    body = rows[1:] if header else rows
    if column is None:
        idx = next((i for i, v in enumerate(body[0]) if numeric(v)), None) if body else None
        if idx is None:
            raise SeriesError("no numeric column: name one with --column")
    elif header and column in header:
        idx = header.index(column)
    elif column.isdigit():
        idx = int(column)
    else:
        raise SeriesError(f"no column {column!r} (columns: {', '.join(header or [])})")
    values = []
    for line, row in enumerate(body, start=2 if header else 1):
        try:
            values.append(float(row[idx]))
        except (IndexError, ValueError):
            raise SeriesError(f"line {line}: {row[idx] if idx < len(row) else '(missing)'!r} is not a number") from None
    return as_series(values, "column", finite=False)


def _jsonl(p: Path, column: str | None) -> np.ndarray:
    values = []
    for line, text in enumerate(p.read_text("utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeriesError(f"line {line}: malformed JSON ({exc.msg})") from None
        if isinstance(obj, dict):
            key = column or next((k for k, v in obj.items() if isinstance(v, (int, float))
                                  and not isinstance(v, bool)), None)
            obj = obj.get(key) if key is not None else None
        if obj is None or isinstance(obj, bool) or not isinstance(obj, (int, float)):
            raise SeriesError(f"line {line}: no number{f' under {column!r}' if column else ''}")
        values.append(float(obj))
    return as_series(values, "values", finite=False)
