"""``dataset.json``: what a records directory holds, written last by build_records; ``RecordsInfo`` reads
and writes it.

Schema (format 1)::

    {
      "format": 1,
      "dataset": "nih",                      # adapter registry name
      "task": "multilabel" | "multiclass",
      "classes": ["Atelectasis", ...],       # order of the labels/state feature
      "label_tree": {"Cardiomegaly": "Enlarged Cardiomediastinum", ...},   # child -> parent
      "state_codes": {"positive": 1, "negative": 0, "uncertain": -1, "blank": -2},
      "image_size": 256, "resize": "pad", "encoding": "png",
      "splits": {
        "train": {
          "examples": 1234, "patients": 321,
          "counts": {"Atelectasis": {"positive": 1, "negative": 2, "uncertain": 0, "blank": 5}, ...},
          "shards": [{"file": "train-00000-of-00002.tfrecord", "records": 617, "bytes": 5123456,
                      "sha256": "..."}, ...]
        }, ...
      },
      "skipped": {"total": 3, "by_reason": {"corrupt image": 2, "missing file": 1}},
      "build_args": {...},                   # the resolved build config
      "fingerprint": "...",                  # digest of what decides the content (build.fingerprint)
      "cxr_tf_version": "0.1.0",
      "checksum": "..."                      # sha256 of the rest (see content_checksum)
    }

What is read is checked against what was built, cheaply on every read and fully on request:
``RecordsInfo.load`` refuses a dataset.json edited after the build (a reordered class list would silently
permute the labels' names), ``shard_paths`` refuses a missing shard or one whose size is not the recorded
one (a replaced or truncated shard), and ``verify_shards`` (``--verify``) compares every shard's sha256.
Directories written before ``checksum`` and the shards' ``bytes`` existed are read without those checks.

URLs (``gs://``, ``s3://``) go through ``tf.io.gfile``; a local dataset.json is read without TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from cxr_tf import labels
from cxr_tf.errors import DataError, UserError
from cxr_tf.io import atomic

FILENAME = "dataset.json"
FORMAT = 1
# The stored label states, by name (labels.STATE_NAMES inverted), as dataset.json spells them out.
STATE_CODES = {name: code for code, name in labels.STATE_NAMES.items()}


def join(directory: str, name: str) -> str:
    """``directory/name`` for local paths and URLs alike."""
    return directory.rstrip("/") + "/" + name


@dataclass(frozen=True)
class Shard:
    """One TFRecord file of a split."""

    file: str            # name inside the records directory, e.g. train-00000-of-00002.tfrecord
    records: int         # examples it holds
    bytes: int | None = None  # its size; None in directories built before sizes were recorded
    sha256: str = ""     # hex digest of the file ("" when unknown: --verify skips it)

    def to_json(self) -> dict[str, Any]:
        sized = {} if self.bytes is None else {"bytes": self.bytes}
        return {"file": self.file, "records": self.records, **sized, "sha256": self.sha256}

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> Shard:
        return cls(content["file"], content["records"], content.get("bytes"), content["sha256"])


@dataclass(frozen=True)
class Split:
    """One split of the records: its size, its raw label counts and its shards in reading order."""

    examples: int
    patients: int
    counts: dict[str, dict[str, int]]  # class -> state name (positive, negative, uncertain, blank) -> images
    shards: tuple[Shard, ...]

    def positives(self, name: str) -> int:
        """Images of the split whose raw state of class ``name`` is positive."""
        return int(self.counts[name]["positive"])

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "patients": self.patients, "counts": self.counts,
                "shards": [shard.to_json() for shard in self.shards]}

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> Split:
        return cls(content["examples"], content["patients"], content["counts"],
                   tuple(Shard.from_json(shard) for shard in content["shards"]))


@dataclass(frozen=True)
class SkippedRows:
    """Source rows left out of the build: how many, and how many per reason category."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_reason": self.by_reason}


@dataclass(frozen=True)
class RecordsInfo:
    """The content of a records directory's ``dataset.json`` (see the module docstring for the file).

    ``load`` reads and checks it, ``save`` writes it (with its checksum) as build_records does: a loaded
    file saved again is the same bytes.
    """

    dataset: str                             # adapter registry name
    task: str                                # multilabel | multiclass
    classes: tuple[str, ...]                 # order of the labels/state feature
    image_size: int                          # stored side, pixels
    resize: str                              # how the images were brought to image_size
    encoding: str                            # png | jpeg
    splits: dict[str, Split]                 # in build order (train, val, test)
    label_tree: dict[str, str] = field(default_factory=dict)  # child -> parent
    state_codes: dict[str, int] = field(default_factory=lambda: dict(STATE_CODES))
    skipped: SkippedRows = field(default_factory=SkippedRows)
    build_args: dict[str, Any] = field(default_factory=dict)  # the resolved build config
    fingerprint: str = ""                    # build.fingerprint of the build
    cxr_tf_version: str = ""
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        """The ``dataset.json`` content: a dict in the file's key order, checksum last."""
        content = self._content()
        return {**content, "checksum": content_checksum(content)}

    def _content(self) -> dict[str, Any]:
        return {
            "format": self.format, "dataset": self.dataset, "task": self.task, "classes": list(self.classes),
            "label_tree": self.label_tree, "state_codes": self.state_codes, "image_size": self.image_size,
            "resize": self.resize, "encoding": self.encoding,
            "splits": {name: split.to_json() for name, split in self.splits.items()},
            "skipped": self.skipped.to_json(), "build_args": self.build_args, "fingerprint": self.fingerprint,
            "cxr_tf_version": self.cxr_tf_version,
        }

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> RecordsInfo:
        """A ``RecordsInfo`` from parsed ``dataset.json`` content (not checked: ``load`` checks).

        Raises:
            KeyError, TypeError, AttributeError: a key is missing or holds the wrong kind of value.
        """
        skipped = content["skipped"]
        return cls(
            dataset=content["dataset"], task=content["task"], classes=tuple(content["classes"]),
            image_size=content["image_size"], resize=content["resize"], encoding=content["encoding"],
            splits={name: Split.from_json(split) for name, split in content["splits"].items()},
            label_tree=dict(content["label_tree"]), state_codes=dict(content["state_codes"]),
            skipped=SkippedRows(skipped["total"], dict(skipped["by_reason"])), build_args=dict(content["build_args"]),
            fingerprint=content["fingerprint"], cxr_tf_version=content["cxr_tf_version"], format=content["format"])

    @classmethod
    def load(cls, records_dir: str) -> RecordsInfo:
        """Read and check ``records_dir/dataset.json``.

        Raises:
            UserError: no dataset.json (an incomplete or foreign directory), one that is not JSON of this
                format or lacks a key, or one whose content no longer matches its checksum (edited).
        """
        path = join(str(records_dir), FILENAME)
        text = _read_text(path)
        if text is None:
            raise UserError(
                f"{path} does not exist: {records_dir} is not a finished records directory "
                "(run python -m cxr_tf.build_records, or re-run it to finish an interrupted build)"
            )
        try:
            content = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not readable JSON ({err}); re-run build_records") from None
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise UserError(f"{path}: not a dataset.json of format {FORMAT}; rebuild the records")
        if "checksum" in content and content["checksum"] != content_checksum(content):
            raise UserError(f"{path}: edited after the build (its content no longer matches its checksum, e.g. a "
                            "changed class list); restore it or rebuild the records")
        try:
            return cls.from_json(content)
        except (KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{path}: not a complete dataset.json of format {FORMAT} ({type(err).__name__}: {err}); "
                            "rebuild the records") from None

    def save(self, directory: str) -> None:
        """Write ``directory/dataset.json`` atomically (indented JSON, checksum last), as build_records does."""
        atomic.write_text(join(str(directory), FILENAME), json.dumps(self.to_json(), indent=2))


def _read_text(path: str) -> str | None:
    """The text of ``path``, None when it does not exist. Local files are read without TensorFlow (the report
    command reads a run's dataset.json and never starts it); URLs go through ``tf.io.gfile``."""
    try:
        if "://" not in path:
            with open(path, "rb") as fh:
                return fh.read().decode()
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path, "rb") as fh:
            return fh.read().decode()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not readable JSON ({err}); re-run build_records") from None


def content_checksum(content: Mapping[str, Any]) -> str:
    """sha256 of ``dataset.json`` content without its ``checksum`` key, as canonical JSON (sorted keys)."""
    body = {key: value for key, value in content.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def split_entry(records_dir: str, info: RecordsInfo, split: str) -> Split:
    """``info.splits[split]``; a split that is missing or holds no example is a ``UserError`` naming both."""
    entry = info.splits.get(split)
    if entry is None or not entry.examples:
        have = ", ".join(f"{name} ({s.examples})" for name, s in info.splits.items()) or "none"
        raise UserError(f"--records {records_dir} has no {'' if entry is None else 'example in its '}split "
                        f"{split!r}; its splits (examples): {have}")
    return entry


def shard_paths(records_dir: str, info: RecordsInfo, split: str) -> list[str]:
    """Full paths of the shards of ``split``, each checked to exist with its recorded size.

    Raises:
        UserError: an unknown or empty split (the ones there are are listed), a missing shard, or a shard whose
            size differs from dataset.json's ``bytes`` (replaced or truncated).
    """
    import tensorflow as tf

    paths = []
    for shard in split_entry(records_dir, info, split).shards:
        path = join(str(records_dir), shard.file)
        if shard.bytes is not None:
            try:
                size = tf.io.gfile.stat(path).length
            except tf.errors.NotFoundError:
                raise UserError(f"{path}: missing shard of {records_dir}; rebuild the records") from None
            if size != shard.bytes:
                raise UserError(f"{path}: {size} bytes where dataset.json records {shard.bytes}; the shard was "
                                "replaced or truncated: rebuild the records")
        paths.append(path)
    return paths


def verify_shards(records_dir: str, info: RecordsInfo) -> int:
    """Compare every shard's sha256 with dataset.json (``--verify``); returns the number of shards checked.

    Raises:
        DataError: the first shard whose digest differs, named.
    """
    import tensorflow as tf

    checked = 0
    for split, entry in info.splits.items():
        if not entry.examples:
            continue  # an empty split has no shard to check (and shard_paths refuses it)
        for path, shard in zip(shard_paths(records_dir, info, split), entry.shards):
            if not shard.sha256:
                continue
            digest = hashlib.sha256()
            with tf.io.gfile.GFile(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != shard.sha256:
                raise DataError(f"{path}: sha256 differs from dataset.json's; the shard is damaged or was replaced: "
                                "rebuild the records")
            checked += 1
    return checked


@contextlib.contextmanager
def naming_damaged_shards(records_dir: str) -> Iterator[None]:
    """Turn TensorFlow's ``DataLossError`` (which names no file) into a ``DataError`` naming the shard.

    The shards are only searched after the error: each is read once more until the one that fails.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.DataLossError as err:
        reason = err.message.split("\n")[0]
        raise DataError(f"{_damaged_shard(records_dir) or records_dir}: corrupted or truncated records "
                        f"({reason}); rebuild the records") from None


def _damaged_shard(records_dir: str) -> str | None:
    import tensorflow as tf

    for entry in RecordsInfo.load(records_dir).splits.values():
        for shard in entry.shards:
            path = join(str(records_dir), shard.file)
            try:
                for _ in tf.data.TFRecordDataset(path):
                    pass
            except tf.errors.DataLossError:
                return path
    return None
