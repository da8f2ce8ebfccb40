"""build_records: records read back equal a direct decode, bad input is listed, builds resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr_tf import labels
from cxr_tf.io import imaging
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import DataError, UserError
from cxr_tf.records import build, encode, features, info, output
from tests import image_factory as make

CLASSES = ["Cardiomegaly", "Effusion"]
OPTIONS = build.RecordOptions(image_size=32, shard_mb=0.002)  # ~3 images per shard


def write(root: Path, name: str, data: bytes) -> str:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    return name


def manifest_of(root: Path, paths: list[str], split: list[str] | None = None,
                boxes: list[str] | None = None, skipped: pd.DataFrame | None = None) -> mf.Manifest:
    n = len(paths)
    frame = pd.DataFrame({
        mf.PATH: paths,
        mf.PATIENT: [f"p{i // 2}" for i in range(n)],
        mf.VIEW: "frontal", mf.PROJECTION: "PA", mf.SOURCE_SPLIT: "",
        mf.BOXES: boxes or ["[]"] * n,
        "Cardiomegaly": pd.array([1, 0, -1, None] * (n // 4) + [1, 0, -1, None][: n % 4], dtype="Int8"),
        "Effusion": pd.array([0] * n, dtype="Int8"),
        mf.SPLIT: split or ["train"] * n,
    })
    return mf.Manifest("test", "multilabel", CLASSES, frame, image_root=root,
                       skipped=skipped if skipped is not None else mf.empty_skipped())


def good_images(root: Path, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [write(root, f"img/{i:03d}.png", make.png(rng.integers(0, 255, (40 + i, 48), np.uint8)))
            for i in range(n)]


def all_records(out: Path, content: dict) -> list[dict]:
    paths = [str(out / s.file) for split in content.splits.values() for s in split.shards]
    return list(output.read_records(paths, len(content.classes)))


def test_records_round_trip_pixels_labels_and_metadata(tmp_path):
    paths = good_images(tmp_path / "src", 6)
    manifest = manifest_of(tmp_path / "src", paths)
    content = build.build_records(manifest, str(tmp_path / "out"), OPTIONS)
    records = {r[features.PATH_KEY].decode(): r for r in all_records(tmp_path / "out", content)}
    assert sorted(records) == sorted(paths)
    for i, path in enumerate(paths):
        direct, _ = imaging.resize(imaging.decode_gray8((tmp_path / "src" / path).read_bytes()), 32, "pad")
        stored = imaging.decode_gray8(records[path][features.IMAGE_KEY])
        assert np.array_equal(stored, direct)
        assert records[path][features.ORIGINAL_HEIGHT_KEY] == 40 + i
        expected_state = [labels.POSITIVE, labels.NEGATIVE, labels.UNCERTAIN, labels.BLANK][i % 4]
        assert list(records[path][features.LABELS_KEY]) == [expected_state, labels.NEGATIVE]
    assert content.splits["train"].examples == 6
    assert content.splits["train"].counts["Cardiomegaly"] == {
        "positive": 2, "negative": 2, "uncertain": 1, "blank": 1}
    assert len(content.splits["train"].shards) > 1


def test_boxes_are_scaled_to_the_stored_image(tmp_path):
    root = tmp_path / "src"
    path = write(root, "a.png", make.png(np.zeros((200, 100), np.uint8)))
    manifest = manifest_of(root, [path], boxes=[json.dumps([["Effusion", 20, 50, 20, 20]])])
    content = build.build_records(manifest, str(tmp_path / "out"), build.RecordOptions(image_size=64))
    (record,) = all_records(tmp_path / "out", content)
    assert list(record[features.BOX_LABEL_KEY]) == [CLASSES.index("Effusion")]
    corners = [record[k][0] for k in features.BOX_COORD_KEYS]
    assert corners == pytest.approx([16 + 6.4, 16.0, 16 + 12.8, 22.4])


def bad_inputs(root: Path) -> dict[str, str]:
    """File name -> expected skip reason (substring); files with reason '' must be kept."""
    image = make.gradient(64, 64)
    cases = {
        "zero.png": (b"", "empty file"),
        "text.png": (b"not an image at all" * 10, "not an image"),
        "truncated.png": (make.png(image)[:120], "corrupt"),
        "truncated.jpg": (make.jpeg(image)[:-300], "truncated"),
        "bomb.png": (make.png_bomb(), "too large"),
        "sixteen.png": (make.png(image.astype(np.uint16) * 200), ""),
        "rgba.png": (make.png(np.dstack([image] * 3 + [np.full_like(image, 255)])), ""),
        "cmyk.jpg": (make.cmyk_jpeg(image), ""),
        "scan.dcm": (make.dicom(image.astype(np.uint16) * 16, "MONOCHROME1"), ""),
    }
    for name, (data, _) in cases.items():
        write(root, name, data)
    expected = {name: reason for name, (_, reason) in cases.items()}
    expected["missing.png"] = "missing file"
    return expected


def test_bad_images_are_skipped_counted_and_listed_and_good_ones_kept(tmp_path):
    root = tmp_path / "src"
    expected = bad_inputs(root)
    (tmp_path / "secret.png").write_bytes(make.png(make.gradient()))
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    expected["link.png"] = "escapes the image root"
    adapter_skips = pd.DataFrame({"path": ["dup.png"], "reason": ["duplicate path"]})
    manifest = manifest_of(root, sorted(expected), skipped=adapter_skips)
    content = build.build_records(manifest, str(tmp_path / "out"), OPTIONS)

    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert reasons.pop("dup.png") == "duplicate path"
    assert sorted(reasons) == sorted(n for n, r in expected.items() if r)
    for name, reason in reasons.items():
        assert expected[name] in reason
    kept = {r[features.PATH_KEY].decode() for r in all_records(tmp_path / "out", content)}
    assert kept == {n for n, r in expected.items() if not r}
    assert content.skipped.total == len(skipped)
    assert sum(content.skipped.by_reason.values()) == len(skipped)
    assert content.splits["train"].examples == len(kept)
    manifest_csv = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert set(manifest_csv[mf.PATH]) == kept


def test_strict_stops_at_the_first_bad_image_naming_it(tmp_path):
    root = tmp_path / "src"
    paths = good_images(root, 2) + [write(root, "zero.png", b"")]
    with pytest.raises(DataError, match="zero.png: empty file"):
        build.build_records(manifest_of(root, paths), str(tmp_path / "out"), OPTIONS, strict=True)


def test_same_arguments_give_identical_shards_and_rerun_is_a_no_op(tmp_path):
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 7), split=["train"] * 4 + ["val"] * 2 + ["test"])
    first = build.build_records(manifest, str(tmp_path / "a"), OPTIONS)
    second = build.build_records(manifest, str(tmp_path / "b"), OPTIONS, workers=2)
    assert first.splits == second.splits
    mtime = (tmp_path / "a" / info.FILENAME).stat().st_mtime_ns
    assert build.build_records(manifest, str(tmp_path / "a"), OPTIONS) == first
    assert (tmp_path / "a" / info.FILENAME).stat().st_mtime_ns == mtime


def test_a_different_build_in_out_is_refused_unless_overwrite(tmp_path):
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 3))
    build.build_records(manifest, str(tmp_path / "out"), OPTIONS)
    other = build.RecordOptions(image_size=48)
    with pytest.raises(UserError, match="--overwrite"):
        build.build_records(manifest, str(tmp_path / "out"), other)
    content = build.build_records(manifest, str(tmp_path / "out"), other, overwrite=True)
    assert content.image_size == 48
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds 'notes.txt', which build_records did not write"):
        build.build_records(manifest, str(tmp_path / "foreign"), OPTIONS)


def test_overwrite_deletes_only_what_a_build_wrote_and_refuses_a_folder_with_a_users_file(tmp_path):
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 3))
    out = tmp_path / "out"
    build.build_records(manifest, str(out), OPTIONS)
    (out / "notes.txt").write_text("my notes")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError, match=f"--out {out} holds 'notes.txt', which build_records did not write"):
        build.build_records(manifest, str(out), build.RecordOptions(image_size=48), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "notes.txt").read_text() == "my notes"
    (out / "notes.txt").unlink()
    content = build.build_records(manifest, str(out), build.RecordOptions(image_size=48), overwrite=True)
    assert content.image_size == 48


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_out_equal_to_or_inside_the_images_is_refused_and_the_images_survive(tmp_path, where):
    root = tmp_path / "src"
    paths = good_images(root, 3)
    (root / "labels.csv").write_text("path\n" + "\n".join(paths) + "\n")
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = root if where == "equal" else root / "img" / "records"
    with pytest.raises(UserError, match=f"--out {out} is inside --images {root}"):
        build.build_records(manifest_of(root, paths), str(out), OPTIONS, overwrite=True)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == files


def test_a_second_build_into_a_locked_out_is_refused_and_the_first_build_is_untouched(tmp_path):
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 3))
    out = str(tmp_path / "out")
    with output.claim(out, root):  # what a running build holds
        with pytest.raises(UserError, match=f"--out {out} is being written by another build"):
            build.build_records(manifest, out, OPTIONS)
        assert sorted(p.name for p in Path(out).iterdir()) == [output.LOCK]
    content = build.build_records(manifest, out, OPTIONS)  # the lock is released with its holder
    assert content.splits["train"].examples == 3


def test_an_interrupted_build_resumes_from_finished_shards(tmp_path, monkeypatch):
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 9))
    reference = build.build_records(manifest, str(tmp_path / "ref"), OPTIONS)

    real = encode.make_record
    calls = {"n": 0}

    def dying(task, *args):
        calls["n"] += 1
        if calls["n"] == 5:  # in the middle of the second shard
            raise KeyboardInterrupt
        return real(task, *args)

    monkeypatch.setattr(encode, "make_record", dying)
    with pytest.raises(KeyboardInterrupt):
        build.build_records(manifest, str(tmp_path / "out"), OPTIONS)
    assert not (tmp_path / "out" / info.FILENAME).exists()
    monkeypatch.setattr(encode, "make_record", real)
    finished_before = (tmp_path / "out" / reference.splits["train"].shards[0].file).stat().st_mtime_ns
    resumed = build.build_records(manifest, str(tmp_path / "out"), OPTIONS)
    assert resumed.splits == reference.splits
    first_shard = tmp_path / "out" / reference.splits["train"].shards[0].file
    assert first_shard.stat().st_mtime_ns == finished_before  # reused, not rewritten


@pytest.mark.parametrize("reason, category", [
    ("line 12: unknown finding 'Foo' (known: A, B)", "unknown finding 'Foo'"),
    ("image too small (4x4; at least 16 px a side)", "image too small"),
    ("missing file: not found under /data", "missing file"),
    ("duplicate path", "duplicate path"),
])
def test_skips_are_counted_by_kind_without_row_numbers_or_details(reason, category):
    assert mf.reason_category(reason) == category
