"""Export a recorded session as files other tools read: JSONL, CSV or Parquet, one file per table.

    streams     name, kind, source, opened, closed, status, error
    events      text streams' events in the session format ``midstream run FILE.jsonl`` replays
                (open, request, text, chunk, choice, reasoning, usage, request_end, error, close; t in seconds)
    snapshots   stream, t, seq, status, signal, error, attractor_type, attractor_confidence,
                attractor_lyapunov, and every metric (JSONL: a ``metrics`` object;
                CSV/Parquet: one ``metrics.<name>`` column per metric)
    patterns    stream, t, kind, message, start
    transcripts stream, start, end, text, engine, words ([word, start, end] as JSON text in CSV)
    detections  stream, t, label, x, y, w, h, score
    series      stream, name, t, value (audio level/peak per chunk, video motion/brightness per frame)

Parquet needs pyarrow (``pip install 'midstream-tui[export]'``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..jsonsafe import encodable, finite
from .store import Session, StoreError

FORMATS = ("jsonl", "csv", "parquet")
TABLES = ("streams", "events", "snapshots", "patterns", "transcripts", "detections", "series")
"""One file per table, named <table>.<format>."""


def _snapshots(session: Session, flat: bool) -> Iterator[dict]:
    for r in session.rows("snapshot"):
        where = f"snapshot row {r['id']}"
        attractor = session.json_of(r["attractor"], where)
        row = {"stream": r["stream"], "t": r["t"], "seq": r["seq"], "status": r["status"], "signal": r["signal"],
               "error": r["error"], "attractor_type": attractor.get("type"),
               "attractor_confidence": attractor.get("confidence"), "attractor_lyapunov": attractor.get("lyapunov")}
        metrics = session.json_of(r["metrics"], where)
        if flat:
            row.update({f"metrics.{k}": v for k, v in metrics.items()})
        else:
            row["metrics"] = metrics
        yield row


def _series(session: Session) -> Iterator[dict]:
    for stream, name in session.series_names():
        times, values = session.series(stream, name)
        for t, v in zip(times.tolist(), values.tolist()):
            yield {"stream": stream, "name": name, "t": t, "value": v}


def _events(session: Session) -> Iterator[dict]:
    """Every recorded event but those of audio and video streams (their opening, errors and end are in the streams
    table; ``events`` is a text session ``midstream run`` replays): an event whose stream has no row, or a row of
    another kind (a damaged file), is exported, not dropped without a word."""
    media = {s["name"] for s in session.streams() if s["kind"] in ("audio", "video")}
    for event in session.text_events():
        if event["stream"] not in media:
            yield event


def tables(session: Session, flat: bool) -> dict[str, Iterable[dict]]:
    def transcripts() -> Iterator[dict]:
        for r in session.rows("transcript"):
            where = f"transcript row {r.pop('id')}"
            r["words"] = session.json_of(r["words"], where, list) if not flat else r["words"]
            yield r

    def plain(table: str) -> Iterator[dict]:
        for r in session.rows(table):
            r.pop("id", None)
            yield r

    return {"streams": session.streams(), "events": _events(session), "snapshots": _snapshots(session, flat),
            "patterns": plain("pattern"), "transcripts": transcripts(), "detections": plain("detection"),
            "series": _series(session)}


def export_session(path: Path, out: Path, fmt: str, *, force: bool = False,
                   notes: list[str] | None = None) -> list[tuple[Path, int]]:
    """Write every table of the session at ``path`` into the folder ``out``; returns (file, rows).

    Files of an earlier export are not overwritten unless ``force``; every
    refusal and every file-system failure is a one-line ``StoreError``, raised
    before anything is written where it can be known in advance. Each table is
    written to a hidden ``.part`` file first, and all are put in place once every
    one was written: a session found damaged half-way leaves no file behind
    (and an earlier export, under ``force``, as it was). ``notes`` receives what
    the user should know of what was written (text a format could not hold).
    """
    if fmt not in FORMATS:
        raise StoreError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise StoreError("parquet export needs pyarrow: pip install 'midstream-tui[export]'") from None
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a folder (--out names the folder the tables are written into)")
    targets = [out / f"{name}.{fmt}" for name in TABLES]
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise StoreError(f"{existing[0]} exists{more} (an earlier export?): pass --force to overwrite, "
                         "or choose another --out")
    for t in existing:
        if t.is_dir():
            raise StoreError(f"{t}: a folder is in the way of the {t.suffix[1:]} file")
    written: list[tuple[Path, int]] = []
    parts: list[Path] = []
    with Session(path, indexes=False) as session:  # (opened and checked before the folder is made; every row is
        # read in order, through no index: a file whose index is damaged is salvaged here)
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None
        done, placed = False, 0
        replaced = [0]
        try:
            for name, rows in tables(session, flat=fmt != "jsonl").items():
                target = out / f"{name}.{fmt}"
                part = out / f".{name}.{fmt}.{os.getpid()}.part"
                parts.append(part)
                try:
                    if fmt == "jsonl":
                        count = _jsonl(part, rows)
                    else:  # (an empty table keeps its columns: a CSV without a header, a Parquet file without
                        # columns, say nothing of what the table holds — an independent review)
                        count = (_csv if fmt == "csv" else _parquet)(part, rows, _columns_of(session, name),
                                                                     replaced)
                except OSError as exc:
                    raise StoreError(f"{target}: cannot write ({exc.strerror or exc})") from None
                written.append((target, count))
            for part, (target, _) in zip(parts, written):
                try:  # (--force: a link in the way is replaced, never written through to where it points)
                    os.replace(part, target)
                except OSError as exc:
                    raise StoreError(f"{target}: cannot write ({exc.strerror or exc})") from None
                placed += 1
            done = True
            if replaced[0] and notes is not None:
                notes.append(f"{replaced[0]} text value(s) held half an emoji or another lone UTF-16 surrogate, which "
                             f"{fmt} cannot hold: written with U+FFFD in its place (--format jsonl keeps them)")
        except StoreError as exc:
            said = f"{placed} of {len(TABLES)} tables were written" if placed else "nothing was exported"
            raise StoreError(f"{exc}; {said}") from None
        finally:
            if not done:
                for part in parts:
                    part.unlink(missing_ok=True)
                if created and not any(out.iterdir()):
                    with contextlib.suppress(OSError):  # (made again by someone else meanwhile: theirs)
                        out.rmdir()
    return written


def _cell(v, replaced: list[int]):
    """A value for a CSV or Parquet cell: lists and objects as JSON text; text as UTF-8 can encode it (a lone
    surrogate, half an emoji, as U+FFFD: these formats have no escape for it; counted in ``replaced``)."""
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    if isinstance(v, str):
        kept = encodable(v)
        if kept is not v:
            replaced[0] += 1
        return kept
    return v


def _jsonl(target: Path, rows: Iterable[dict]) -> int:
    n = 0
    with open(target, "w", encoding="utf-8") as f:
        for row in rows:
            try:
                line = json.dumps(row, ensure_ascii=False, allow_nan=False)
            except ValueError:  # a NaN or inf (a damaged file, a NaN measured): JSON has no word for them: null
                row = finite(row)
                line = json.dumps(row, ensure_ascii=False, allow_nan=False)
            try:
                f.write(line + "\n")
            except UnicodeEncodeError:  # half an emoji (a lone surrogate): as a JSON escape, joined again when read
                f.write(json.dumps(row, allow_nan=False) + "\n")
            n += 1
    return n


SOURCE_TABLE = {"patterns": "pattern", "transcripts": "transcript", "detections": "detection"}
"""The exported tables that are a stored table's rows as they are (its columns, less the row id)."""


def _columns_of(session: Session, name: str) -> list[str]:
    """The columns an exported table has when it has no rows (those of the stored table it is made of)."""
    table = SOURCE_TABLE.get(name)
    if table is None:
        return []
    return [row[1] for row in session.conn.execute(f'PRAGMA table_info("{table}")') if row[1] != "id"]


def _csv(target: Path, rows: Iterable[dict], empty: Sequence[str] = (), replaced: list[int] | None = None) -> int:
    replaced = replaced if replaced is not None else [0]
    rows = list(rows)  # the header is the union of every row's keys (metrics differ by stream kind)
    columns: dict[str, None] = {} if rows else dict.fromkeys(empty)
    for row in rows:
        columns.update(dict.fromkeys(row))
    with open(target, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v, replaced) for k, v in row.items()})
    return len(rows)


def _parquet(target: Path, rows: Iterable[dict], empty: Sequence[str] = (), replaced: list[int] | None = None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    replaced = replaced if replaced is not None else [0]
    rows = [{k: _cell(v, replaced) for k, v in row.items()} for row in rows]
    # the union of every row's keys, in the order first seen (the CSV header's); with no rows, ``empty`` (as text)
    columns: dict[str, None] = {} if rows else dict.fromkeys(empty)
    for row in rows:
        columns.update(dict.fromkeys(row))
    arrays = {}
    for column in columns:
        values = [row.get(column) for row in rows]  # (a row without it: null)
        try:
            arrays[column] = pa.array(values) if rows else pa.array([], pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # values of mixed types: as text, as in the CSV
            arrays[column] = pa.array([None if v is None else str(v) for v in values], pa.string())
    pq.write_table(pa.table(arrays), target)
    return len(rows)
