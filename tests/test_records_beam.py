"""The Beam runner (DirectRunner) builds the same records as the local process pool."""

from __future__ import annotations

import pandas as pd
import pytest

from cxr_tf.records import beam, build, encode, output
from tests.test_records_build import OPTIONS, all_records, bad_inputs, good_images, manifest_of

DIRECT = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.mark.slow
def test_beam_and_local_builds_give_the_same_records_counts_and_skipped_list(tmp_path):
    root = tmp_path / "src"
    paths = good_images(root, 14) + sorted(bad_inputs(root))
    splits = (["train"] * 3 + ["val", "test"]) * 5
    manifest = manifest_of(root, paths, split=splits[: len(paths)],
                           skipped=pd.DataFrame({"path": ["dup.png"], "reason": ["duplicate path"]}))

    local = build.build_records(manifest, str(tmp_path / "local"), OPTIONS, workers=2)
    on_beam = beam.build_records_beam(manifest, str(tmp_path / "beam"), OPTIONS, beam_options=DIRECT)

    assert on_beam.splits == local.splits  # same shards, record counts, sha256 and counts
    assert on_beam.skipped == local.skipped
    for name in ("skipped.csv", "manifest.csv", "dataset_info.json", "features.json"):  # TFDS metadata too
        assert (tmp_path / "beam" / name).read_text() == (tmp_path / "local" / name).read_text()
    pixels = {r["image/path"]: r["image/encoded"] for r in all_records(tmp_path / "local", local)}
    assert {r["image/path"]: r["image/encoded"] for r in all_records(tmp_path / "beam", on_beam)} == pixels
    metrics = on_beam.build_args["beam_metrics"]
    assert metrics["images ok"] == sum(s.examples for s in local.splits.values())
    built_skips = {k: v for k, v in local.skipped.by_reason.items() if k != "duplicate path"}
    assert {k.removeprefix("skipped: "): v for k, v in metrics.items() if k != "images ok"} == built_skips


def test_beam_build_resumes_finished_shards_and_writes_all_skipped_shards(tmp_path):
    root = tmp_path / "src"
    paths = good_images(root, 3) + [str(p) for p in ["zero1.png", "zero2.png", "zero3.png"]]
    for name in paths[3:]:
        (root / name).write_bytes(b"")
    manifest = manifest_of(root, paths, split=["train"] * 3 + ["test"] * 3)
    reference = build.build_records(manifest, str(tmp_path / "local"), OPTIONS)
    output.prepare(str(tmp_path / "beam"), build.plan_build(manifest, OPTIONS, strict=False).key, False)
    first = reference.splits["train"].shards[0].file
    # Pretend an earlier run finished the first shard: the Beam run must keep it as it is.
    plan = build.plan_build(manifest, OPTIONS, strict=False)
    name, tasks = plan.todo(str(tmp_path / "beam"))[0]
    assert name == first
    output.write_shard(str(tmp_path / "beam"), name,
                       (encode.make_record(t, root, OPTIONS) for t in tasks), strict=False)
    mtime = (tmp_path / "beam" / first).stat().st_mtime_ns

    content = beam.build_records_beam(manifest, str(tmp_path / "beam"), OPTIONS,
                                      beam_options=["--runner=DirectRunner"])
    assert content.splits == reference.splits
    assert content.splits["test"].examples == 0  # every image bad: shard still written
    assert (tmp_path / "beam" / first).stat().st_mtime_ns == mtime
