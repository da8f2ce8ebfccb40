"""Reading label tables into manifests, and manifests back from CSV, without losing a row.

Adapters read their source's CSV with ``read_table`` (malformed rows become skipped rows, not a
crash), turn label cells into states with ``parse_states``, and hand the result to ``assemble``,
which normalises paths and drops unsafe and duplicate ones into ``Manifest.skipped``. Everything
is vectorised pandas: the full CheXpert train.csv (223,414 rows) reads in about a second.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import UserError
from cxr_tf.io.imaging import IMAGE_SUFFIXES
from cxr_tf.io.paths import UnreadableFile, UnsafePath, read_regular_file, relative_path

LINE = "_line"
# A path needs the careful (per-row) check only when it has something relative_path may change or
# refuse; plain substring tests (no regex) keep this in C for the common, clean path.
# Label tables of the supported sources are far smaller (CheXpert's train.csv: 26 MB); a bigger file, or
# a .gz expanding beyond this, is a mistake or a decompression bomb (1 MB of gzip can hold 1 GB of NULs).
MAX_TABLE_BYTES = 512 * 2**20
_SUSPECT_PARTS = ("\\", ":", "//", "/.", "\0")


def read_table(path: Path, flag: str, *, names: Sequence[str] | None = None,
               required: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A label CSV (plain or .gz) as string columns, plus its malformed rows.

    Args:
        path: the file given by ``flag``.
        flag: the flag that named the file, for error messages (``--labels``).
        names: column names by position when the header cannot be trusted for them (NIH's header
            has unquoted commas inside two names); default: the header's own names.
        required: columns that must be in the header, at the same position as in ``names``.

    Returns:
        ``(rows, skipped)``: ``rows`` has one str column per name (blank cells are ``""``) and
        ``LINE``, the row's 1-based line number in the file; ``skipped`` (``path``, ``reason``)
        lists rows whose number of fields differs from the number of names.

    Raises:
        UserError: missing or unreadable file, no header, or a required column missing.
    """
    text = _read_text(path, flag)
    # pandas' "str" dtype (Arrow-backed where pyarrow is installed) runs the string ops below in C.
    lines = pd.Series(text.splitlines(), dtype="str")
    if lines.empty:
        raise UserError(f"{flag} {path}: the file is empty; expected a CSV with a header")
    try:
        header = next(csv.reader([lines.iloc[0]]))
    except csv.Error as err:  # e.g. a field over csv's 128 KB limit
        raise UserError(f"{flag} {path}: line 1 is not a CSV header ({err})") from None
    names = list(header if names is None else names)
    for column in required:
        if column not in header or header.index(column) != names.index(column):
            raise UserError(f"{flag} {path}: no column {column!r} (header: {lines.iloc[0][:120]!r}); "
                            f"is this the right file for this --dataset?")
    body = lines.iloc[1:]
    body = body[body.str.strip() != ""]
    fields = body.str.count(",") + 1
    quoted = body.str.contains('"', regex=False)
    fields[quoted] = body[quoted].str.replace(r'"[^"]*"', '""', regex=True).str.count(",") + 1
    # An unclosed quote would make the CSV parser swallow every following line into one field.
    unbalanced = quoted & (body.str.count('"') % 2 == 1)
    good = (fields == len(names)) & ~unbalanced
    bad = body[~good]
    skipped = pd.DataFrame({
        "path": bad.str.split(",").str[0].astype(str),
        "reason": [f"line {i + 1}: malformed row (unbalanced quote)" if odd else
                   f"line {i + 1}: malformed row ({n} fields, expected {len(names)})"
                   for i, n, odd in zip(bad.index, fields[~good], unbalanced[~good])],
    })
    kept = body[good]
    if kept.empty:
        rows = pd.DataFrame({name: pd.Series(dtype=str) for name in names})
    else:
        try:
            rows = pd.read_csv(io.StringIO("\n".join(kept)), header=None, names=names, dtype=str,
                               keep_default_na=False, na_filter=False, skip_blank_lines=False)
        except (pd.errors.ParserError, ValueError) as err:
            raise UserError(f"{flag} {path}: not a readable CSV ({err})") from None
    rows[LINE] = (kept.index + 1).to_numpy()
    return rows, skipped.reset_index(drop=True)


def _read_text(path: Path, flag: str) -> str:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{flag} {path}: no such file")
    try:
        raw = read_regular_file(path, MAX_TABLE_BYTES)
    except UnreadableFile as err:
        raise UserError(f"{flag} {path}: {err}") from None
    if path.suffix == ".gz":
        raw = _gunzip(raw, path, flag)
    _refuse_binary(raw, path, flag)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{flag} {path}: not a UTF-8 CSV file ({err})") from None


def _gunzip(raw: bytes, path: Path, flag: str) -> bytes:
    """A .gz file's content, read in pieces and refused as soon as it is binary or over the cap."""
    pieces, total = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            for piece in iter(lambda: fh.read(1 << 20), b""):
                _refuse_binary(piece, path, flag, offset=total)
                total += len(piece)
                if total > MAX_TABLE_BYTES:
                    raise UserError(f"{flag} {path}: expands to over {MAX_TABLE_BYTES} bytes, more than any label "
                                    "table; not a label file")
                pieces.append(piece)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{flag} {path}: not a readable gzip file ({err})") from None
    return b"".join(pieces)


def _refuse_binary(data: bytes, path: Path, flag: str, offset: int = 0) -> None:
    at = data.find(b"\0")
    if at >= 0:
        raise UserError(f"{flag} {path}: binary data (a NUL byte at offset {offset + at}), not a CSV file")


def parse_states(rows: pd.DataFrame, columns: Mapping[str, str], values: Mapping[str, int | None]
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """Label cells -> Int8 states, and the reason of each row that holds an unknown value.

    Args:
        rows: string cells.
        columns: class name -> column of ``rows`` holding it.
        values: cell text (stripped) -> state; ``None`` means blank (kept as ``<NA>``).

    Returns:
        ``(states, reasons)``: states [N, K] Int8 in {1, 0, -1, <NA>} with one column per class;
        ``reasons`` a str Series, ``""`` for good rows, else names the first bad column.
    """
    states = {}
    reasons = pd.Series("", index=rows.index, dtype=object)
    for name, column in columns.items():
        cells = rows[column].str.strip()
        unknown = ~cells.isin(list(values)) & (reasons == "")
        reasons[unknown] = "unknown label value " + cells[unknown].map(repr) + f" for {name}"
        # One vectorised comparison per known text; Series.map would call Python once per cell.
        state = pd.Series(pd.NA, index=rows.index, dtype="Int8")
        for text, value in values.items():
            if value is not None:
                state[(cells == text).to_numpy()] = value
        states[name] = state
    return pd.DataFrame(states, index=rows.index), reasons


def names_to_states(cells: pd.Series, classes: Sequence[str], sep: str) -> tuple[pd.DataFrame, pd.Series]:
    """``sep``-separated finding names -> one 1/0 Int8 column per class, and reasons for unknown names.

    An empty cell is all-negative.
    """
    dummies = cells.str.strip().str.get_dummies(sep=sep)
    dummies.columns = [str(c).strip() for c in dummies.columns]
    dummies = dummies.T.groupby(level=0).max().T if dummies.columns.duplicated().any() else dummies
    unknown = [c for c in dummies.columns if c not in classes and c != ""]
    reasons = pd.Series("", index=cells.index, dtype=object)
    for name in unknown:
        hit = (dummies[name] == 1) & (reasons == "")
        reasons[hit] = f"unknown finding {name!r} (known: {', '.join(classes)})"
    states = pd.DataFrame({name: dummies.get(name, 0) for name in classes},
                          index=cells.index).astype("Int8")
    return states, reasons


def skip_rows(rows: pd.DataFrame, reasons: pd.Series, path_column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``rows`` into those with an empty reason and a skipped table (``line N: reason``)."""
    bad = reasons != ""
    where = ("line " + rows.loc[bad, LINE].astype(str) + ": ") if LINE in rows else ""
    skipped = pd.DataFrame({"path": rows.loc[bad, path_column].astype(str), "reason": where + reasons[bad]})
    return rows[~bad], skipped


def assemble(dataset: str, task: str, classes: list[str], frame: pd.DataFrame,
             skipped: Sequence[pd.DataFrame], *, label_tree: Mapping[str, str] | None = None,
             image_root: Path | None = None) -> mf.Manifest:
    """The Manifest of ``frame`` after path checks: unsafe and duplicate paths move to ``skipped``.

    Args:
        frame: ``path`` (raw, as in the source) and ``patient_id`` columns, class columns (Int8),
            optional ``view``/``projection``/``source_split``/``boxes``/``sex``/``age`` (filled with
            ``""``/``[]``),
            optional ``LINE``.
        skipped: tables of rows the adapter already rejected, in the order to report them.
    """
    frame = frame.copy()
    paths, errors = normalise_paths(frame[mf.PATH])
    frame[mf.PATH] = paths
    frame, unsafe = skip_rows(frame, errors, mf.PATH)
    duplicate = frame[mf.PATH].duplicated(keep="first")
    dup_reason = pd.Series("", index=frame.index, dtype=object)
    dup_reason[duplicate] = "duplicate path (the first row with it is kept)"
    frame, dups = skip_rows(frame, dup_reason, mf.PATH)
    for column, default in ((mf.VIEW, ""), (mf.PROJECTION, ""), (mf.SOURCE_SPLIT, ""), (mf.BOXES, "[]"),
                            (mf.SEX, ""), (mf.AGE, "")):
        if column not in frame:
            frame[column] = default
    frame = frame[list(mf.BASE_COLUMNS + mf.OPTIONAL_COLUMNS) + list(classes)].reset_index(drop=True)
    for column in mf.BASE_COLUMNS + mf.OPTIONAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    for name in classes:
        frame[name] = frame[name].astype("Int8")
    parts = [s for s in (*skipped, unsafe, dups) if len(s)]
    bad = pd.concat(parts, ignore_index=True) if parts else mf.empty_skipped()
    return mf.Manifest(dataset=dataset, task=task, classes=list(classes), frame=frame,
                       label_tree=dict(label_tree or {}), image_root=image_root,
                       skipped=bad[list(mf.SKIPPED_COLUMNS)].astype(str))


def normalise_paths(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``relative_path`` of every cell: (normalised paths, reasons ``""`` or why the path is unsafe).

    Clean paths (the vast majority) pass through a vectorised test; only the rest are checked one by one.
    """
    raw = raw.astype(str)
    paths = raw.copy()
    reasons = pd.Series("", index=raw.index, dtype=object)
    check = raw.str.startswith((".", "/")) | raw.str.endswith("/") | (raw.str.strip() != raw) | (raw == "")
    for part in _SUSPECT_PARTS:
        check |= raw.str.contains(part, regex=False)
    for index, text in raw[check].items():
        try:
            paths[index] = relative_path(text)
        except UnsafePath as err:
            reasons[index] = f"unsafe path: {err}"
    return paths, reasons


class Walk(NamedTuple):
    """What ``walk_images`` found: image paths, and the entries it could not or would not enter."""

    paths: list[str]                   # POSIX, relative to the root, sorted
    skipped: list[tuple[str, str]]     # (POSIX path relative to the root, reason), sorted


def walk_images(root: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Walk:
    """Every file below ``root`` with an image suffix, without leaving ``root``.

    Links to folders are never followed: one leading out of the root (``ln -s / root/slash``) or back
    to one of its own ancestors (a loop) is listed in ``skipped``; one leading elsewhere inside the root
    needs no following, that folder is walked where it is. Unreadable folders are listed in ``skipped``
    and the walk goes on. Files are listed whatever their type (a FIFO named ``x.png`` too):
    ``imaging.read_file`` refuses what is not a regular file, with the reason, when it is read.
    ``os.scandir`` reads entry types without a ``stat`` per file, which keeps a walk over NIH's
    112,120 files well under a second on a local disk.

    Raises:
        UserError: ``root`` itself cannot be read.
    """
    root = Path(root)
    real_root = root.resolve()
    found: list[str] = []
    skipped: list[tuple[str, str]] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as entries:
                items = list(entries)
        except OSError as err:
            if not prefix:
                raise UserError(f"{root}: unreadable folder ({err.strerror})") from None
            skipped.append((prefix.rstrip("/"), f"unreadable folder ({err.strerror})"))
            continue
        for item in items:
            relative = prefix + item.name
            try:
                is_dir = item.is_dir()
            except OSError:  # ELOOP: a link that leads to itself
                is_dir = False
                if not item.name.lower().endswith(suffixes):
                    skipped.append((relative, "symbolic link loop"))
                    continue
            if is_dir and item.is_symlink():
                reason = _folder_link_reason(Path(item.path), real_root)
                if reason:
                    skipped.append((relative, reason))
            elif is_dir:
                stack.append((Path(item.path), relative + "/"))
            elif item.name.lower().endswith(suffixes):
                found.append(relative)
    return Walk(sorted(found), sorted(skipped))


def _folder_link_reason(link: Path, real_root: Path) -> str:
    """Why a link to a folder is reported, or ``""`` when its target is inside the root (walked there)."""
    target = link.resolve()
    if target != real_root and real_root not in target.parents:
        return "link to a folder outside the image root (not followed)"
    if target == link.parent.resolve() or target in link.parent.resolve().parents:
        return "symbolic link loop (a link to a folder above it; not followed)"
    return ""


def patient_sex(values: pd.Series) -> pd.Series:
    """Sources' sex cells (``M``/``F``, ``Male``/``Female``, any case) -> ``M``, ``F`` or ``""`` (unknown)."""
    first = values.astype(str).str.strip().str[:1].str.upper()
    return first.where(first.isin(["M", "F"]), "")


def patient_age(values: pd.Series) -> pd.Series:
    """Sources' age cells (``57``, ``057Y`` in early NIH files) -> whole years as text, ``""`` when unknown."""
    years = pd.to_numeric(values.astype(str).str.extract(r"^\s*(\d+)", expand=False), errors="coerce")
    return years.map(lambda v: "" if pd.isna(v) else str(int(v)))


def one_hot(labels: pd.Series, classes: list[str]) -> pd.DataFrame:
    """Multiclass names -> one Int8 column per class, 1 for the row's class and 0 elsewhere."""
    return pd.DataFrame({name: (labels == name).astype("int8") for name in classes},
                        index=labels.index).astype("Int8")


def read_manifest_csv(path: Path) -> pd.DataFrame:
    """A manifest CSV (``manifest --out``, build_records' ``manifest.csv``) with its dtypes restored.

    Base, optional (``sex``, ``age``) and ``split`` columns come back as str (empty stays ``""``), every
    other column as Int8 label states with blank cells as ``<NA>``, never 0.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise UserError(f"manifest {path} does not exist") from None
    missing = [c for c in mf.BASE_COLUMNS if c not in frame]
    if missing:
        raise UserError(f"{path}: not a manifest CSV, no column(s) {', '.join(missing)}")
    for name in frame.columns:
        if name not in mf.BASE_COLUMNS + mf.OPTIONAL_COLUMNS and name != mf.SPLIT:
            cells = frame[name].replace("", None)
            frame[name] = pd.to_numeric(cells).astype("Int8")
    return frame
