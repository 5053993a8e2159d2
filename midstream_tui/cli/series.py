"""Reading numeric series (and token sequences) from files for `analyze` and `compare`.

Formats, by extension:
  .npy    a 1-D array, or a column of a 2-D array
  .csv    a header row is optional
  .jsonl  one number per line, or one object per line (columns are its keys)
  .txt    numbers separated by white space; with ``tokens=True``, words (compared by identity)

Choosing the column (csv, 2-D npy, jsonl objects): ``column`` is a column name
(a header cell or a key) or a 0-based column number. Without one, the only
numeric column is taken; if there are several, an index column (named i, idx,
index, t, time, timestamp, ... or holding 0, 1, 2, ... n-1) is set aside, and
if exactly one numeric column remains it is taken. Otherwise the file is refused
with the list of its columns: guessing would silently analyse the wrong signal.
``read_series`` returns the column it took, so callers can say which.

Every problem is a ``SeriesError`` with the file, line and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np

from .. import jsonsafe
from ..analysis.validate import SeriesError, as_series

_WORD = re.compile(r"\w+|[^\w\s]")
MAX_POINTS = 100_000_000
"""The most values a series file may hold (800 MB as float64); analysis of more is impractical anyway."""
_INDEX_NAME = re.compile(r"^(|#|i|idx|index|id|n|no|t|ts|time|timestamp|step|sample|epoch|unnamed: ?0)"
                         r"([ _]?[(\[]?(s|ms|us|ns|sec|secs|seconds)[)\]]?)?$")


def read_series(path: str, column: str | None = None, tokens: bool = False) -> tuple[np.ndarray, str | int | None]:
    """The series in ``path`` and the column it came from (a name, a 0-based number, or None: no columns)."""
    p = Path(path)
    if not p.is_file():
        raise SeriesError(f"{path}: no such file")
    ext = p.suffix.lower()
    try:
        if tokens:
            if column is not None:
                raise SeriesError("--column does not apply to token files (the whole text is read)")
            with p.open("rb") as f:
                if f.read(6) == b"\x93NUMPY":  # (its bytes were read as words: 3,538 "tokens" of a binary file)
                    raise SeriesError("a NumPy array, not text: --tokens compares the words of text files")
            return token_ids(p.read_text("utf-8", errors="replace")), None
        if ext == ".npy":
            return _npy(p, column)
        if ext == ".csv":
            return _csv(p, column)
        if ext in (".jsonl", ".ndjson"):
            return _jsonl(p, column)
        if ext in (".txt", ".dat", ""):
            if column is not None:
                raise SeriesError(f"no such column: {column} (a {ext or 'plain'} file holds one series, "
                                  "numbers separated by white space)")
            _check_text_size(p)
            words = p.read_text("utf-8").split()
            return _series(_exact(np.array(words, dtype=np.float64), words), "values"), None
    except SeriesError as exc:
        raise SeriesError(f"{path}: {exc}") from None
    except MemoryError:
        raise SeriesError(f"{path}: too large to load into memory") from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, EOFError, OSError, csv.Error) as exc:
        # what a malformed file makes numpy, csv or json raise: one line, with the file's name
        raise SeriesError(f"{path}: not a readable {ext or 'text'} series ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:120] if str(exc) else 'empty'})") from None
    raise SeriesError(f"{path}: unknown format {ext!r}: use .npy, .csv, .jsonl or .txt")


def load_series(path: str, column: str | None = None, tokens: bool = False) -> np.ndarray:
    """The series in ``path`` (see ``read_series``)."""
    return read_series(path, column, tokens)[0]


def token_ids(text: str) -> np.ndarray:
    """Words and punctuation of ``text`` as numbers equal exactly when the (lower-cased) tokens are.

    A 48-bit hash: exact in float64, and collisions are negligible (about 1e-6
    for a million distinct tokens). The numbers are identities, not magnitudes.
    """
    return np.array([int.from_bytes(hashlib.blake2b(w.lower().encode(), digest_size=6).digest(), "big")
                     for w in _WORD.findall(text)], dtype=np.float64)


MAX_TEXT_BYTES = 128 * 2**20
"""Text series (csv, jsonl, txt) are parsed through Python objects (a string per value, then a
float): several times the file's size in memory. 128 MB of text (millions of values) is the most
read; larger series go in .npy, which is read without that cost."""


def _check_text_size(p: Path) -> None:
    size = p.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise SeriesError(f"too large for a text series: {size / 2**20:,.0f} MB (at most "
                          f"{MAX_TEXT_BYTES // 2**20} MB of text; save larger series as .npy)")
    _check_size(size // 2)


def _check_size(points: int) -> None:
    if points > MAX_POINTS:
        raise SeriesError(f"too large: {points:,} values (at most {MAX_POINTS:,})")


# ---------------------------------------------------------------- choosing a column


def _columns_text(names: list[str]) -> str:
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    return f"columns: {shown or 'none'}"


def _is_index(name: str | None, values: np.ndarray) -> bool:
    """Named like an index or a clock, or holding 0, 1, 2, ... (or 1, 2, 3, ...)."""
    if name is not None and _INDEX_NAME.match(name.strip().lower()):
        return True
    if values.size < 2 or not np.all(np.isfinite(values)):
        return False
    return values[0] in (0.0, 1.0) and bool(np.all(np.diff(values) == 1.0))


def _choose(names: list[str], numeric: dict[int, np.ndarray], column: str | None,
            numbered: bool) -> int:
    """The column to analyse: ``column`` (name, else 0-based number), or the one the data leaves.

    ``names`` are every column's label; ``numeric`` holds the columns that are
    numbers throughout; ``numbered`` means the labels are just the numbers.
    """
    if column is not None:
        col = column.strip()
        if col in names:
            return names.index(col)
        if col.isdigit() and int(col) < len(names):
            return int(col)
        raise SeriesError(f"no such column: {column} ({_columns_text(names)}; "
                          "give a name or a number counted from 0)")
    if not numeric:
        raise SeriesError(f"no numeric column: name one with --column ({_columns_text(names)})")
    if len(numeric) == 1:
        only = next(iter(numeric))
        if len(names) > 1 and _is_index(None if numbered else names[only], numeric[only]):
            raise SeriesError(f"the only numeric column, {names[only]}, looks like an index; the others hold "
                              f"values that are not numbers: name one with --column to see where "
                              f"({_columns_text(names)})")
        return only
    signals = [i for i, v in numeric.items() if not _is_index(None if numbered else names[i], v)]
    if len(signals) == 1:
        return signals[0]
    which = signals if signals else list(numeric)
    raise SeriesError(f"{len(which)} numeric columns ({', '.join(names[i] for i in which[:20])}): "
                      f"choose one with --column NAME or a number counted from 0 ({_columns_text(names)})")


def _label(names: list[str], idx: int, numbered: bool) -> str | int:
    return idx if numbered else names[idx]


# ---------------------------------------------------------------- formats


def _npy(p: Path, column: str | None) -> tuple[np.ndarray, str | int | None]:
    from numpy.lib import format as npformat

    size = p.stat().st_size
    with p.open("rb") as f:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, _fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise SeriesError(f"unsupported .npy format version {version[0]}.{version[1]}")
        offset = f.tell()
    if dtype.hasobject or dtype.kind not in "biuf":
        raise SeriesError(f"expected numbers, got {dtype} values")
    count = 1
    for d in shape:
        count *= int(d)
    need = count * dtype.itemsize
    if need > size - offset:  # checked before numpy allocates what the header claims
        raise SeriesError(f"the header claims {count:,} values of {dtype} ({need:,} bytes) "
                          f"but the file holds {size - offset:,} bytes of data: truncated or corrupt")
    _check_size(count)
    a = np.load(p, allow_pickle=False)
    if a.ndim == 2 and a.shape[1] > 1 and a.shape[0] > 1:
        names = [str(i) for i in range(a.shape[1])]
        cols = {i: np.asarray(a[:, i], dtype=np.float64) for i in range(a.shape[1])}
        idx = _choose(names, cols, column, numbered=True)
        return _series(a[:, idx], "array"), idx
    if column is not None and a.ndim <= 2 and column.strip() not in ("0",):
        raise SeriesError(f"no such column: {column} (the array has shape {a.shape}: one series; columns: 0)")
    return _series(a, "array"), None


def _csv(p: Path, column: str | None) -> tuple[np.ndarray, str | int | None]:
    _check_text_size(p)
    with p.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of the first name
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise SeriesError("empty file")

    def numeric(v: str) -> bool:
        try:
            float(v)
            return True
        except ValueError:
            return False

    header = None if all(numeric(v) for v in rows[0]) else [h.strip() for h in rows[0]]
    body = rows[1:] if header else rows
    if not body:
        raise SeriesError(f"empty: a header ({', '.join(header or [])[:80]}) and no rows")
    width = len(header) if header else max(len(r) for r in body)
    names = header if header else [str(i) for i in range(width)]
    first = 2 if header else 1

    def values(idx: int) -> np.ndarray | None:
        cells = [r[idx] if idx < len(r) else "" for r in body]
        try:
            return np.array(cells, dtype=np.float64)
        except ValueError:
            try:
                return np.array([float(c) for c in cells], dtype=np.float64)
            except ValueError:
                return None

    cols = {i: v for i in range(width) if (v := values(i)) is not None}
    idx = _choose(names, cols, column, numbered=header is None)
    label = _label(names, idx, header is None)
    if idx not in cols:  # named explicitly, but not numbers throughout: say where
        for line, row in enumerate(body, start=first):
            cell = row[idx] if idx < len(row) else None
            if cell is None:
                raise SeriesError(f"line {line}: no value in column {label}")
            if not numeric(cell):
                raise SeriesError(f"line {line}: {cell[:40]!r} in column {label} is not a number")
    chosen = cols.get(idx, np.empty(0))
    return _series(_exact(chosen, [r[idx] if idx < len(r) else "" for r in body]), f"column {label}"), label


def _jsonl(p: Path, column: str | None) -> tuple[np.ndarray, str | int | None]:
    _check_text_size(p)
    records: list = []
    lines: list[int] = []
    for line, text in enumerate(p.read_text("utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            obj = jsonsafe.loads(text)
        except jsonsafe.TooDeep as exc:
            raise SeriesError(f"line {line}: {exc}") from None
        except ValueError as exc:
            raise SeriesError(f"line {line}: malformed JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(obj, dict) and not _number(obj):
            raise SeriesError(f"line {line}: expected a number or an object, got {type(obj).__name__}")
        if records and isinstance(obj, dict) != isinstance(records[0], dict):
            raise SeriesError(f"line {line}: expected {'an object' if isinstance(records[0], dict) else 'a number'} "
                              f"like line {lines[0]}")
        records.append(obj)
        lines.append(line)
    if not records:
        raise SeriesError("empty")
    if not isinstance(records[0], dict):
        if column is not None:
            raise SeriesError(f"no such column: {column} (every line is a plain number: one series)")
        return _series(_exact(np.array([float(v) for v in records]), records), "values"), None
    names: list[str] = list(dict.fromkeys(k for obj in records for k in obj))
    cols = {}
    for i, key in enumerate(names):
        if all(_number(obj.get(key)) for obj in records):
            cols[i] = np.array([float(obj[key]) for obj in records], dtype=np.float64)
    idx = _choose(names, cols, column, numbered=False)
    key = names[idx]
    if idx not in cols:
        for line, obj in zip(lines, records):
            if not _number(obj.get(key)):
                raise SeriesError(f"line {line}: no number under {key!r}")
    return _series(_exact(cols[idx], [obj[key] for obj in records]), "values"), key


def _exact(values: np.ndarray, raw: list) -> np.ndarray:
    """``values`` (floats), or the same numbers read again from ``raw`` as whole numbers (int64, else uint64) when
    they are whole and some lie past 2^53, where float64 has no value of its own for most of them: nanosecond
    clocks and counters (2^60 + 1 is 2^60; a period-7 sequence at 2^60 was read as constant)."""
    if (values.size == 0 or not np.all(np.isfinite(values)) or float(np.abs(values).max()) <= 2.0 ** 53
            or not np.all(values == np.floor(values))):
        return values
    for dtype in (np.int64, np.uint64):
        try:
            return np.array([int(v) for v in raw], dtype=dtype)
        except (ValueError, OverflowError, TypeError):  # ("1e18": written as a float, read as one)
            continue
    return values


def _series(a: np.ndarray, name: str) -> np.ndarray:
    """``as_series`` (not checked for finiteness: the callers say where), whole numbers past 2^53 kept as they are:
    the analysis reads them exactly (their differences), float64 would merge them."""
    checked = as_series(a, name, finite=False)
    a = np.asarray(a)
    if a.dtype.kind in "iu" and a.size and (int(a.max()) > 1 << 53 or int(a.min()) < -(1 << 53)):
        return np.ascontiguousarray(a).reshape(-1)
    return checked


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
