"""``python -m cxr_tf.build_records``: a dataset's label files and images -> sharded TFRecords.

Examples:
    python -m cxr_tf.build_records --dataset nih --labels Data_Entry_2017_v2020.csv \\
        --images /data/nih --bbox BBox_List_2017.csv --split multilabel --out records/nih
    python -m cxr_tf.build_records --dataset kermany --images /data/chest_xray --classes 3 \\
        --out records/kermany3
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.io import imaging
from cxr_tf.io.workers import worker_count
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError
from cxr_tf.registry import Choices

# --runner: where the images are decoded and the shards written.
RUNNERS = Choices("runner", ("local", "beam"))


@dataclasses.dataclass(kw_only=True)
class BuildConfig(SourceConfig):
    """Flags of build_records: the adapter and split flags plus how records are stored."""

    out: str = config.required("output directory (local path or gs://, s3:// URL)")
    image_size: int = config.option(256, "stored image side, pixels (train at this size or crop below it)",
                                     at_least=imaging.MIN_SIDE, at_most=imaging.MAX_SIDE)
    resize: str = config.option("pad", "pad: keep aspect ratio, black borders; squash: stretch; "
                                       "crop: centre crop", choices=imaging.RESIZE_MODES)
    encoding: str = config.option("png", "png (lossless) or jpeg (quality 95, ~4x smaller)",
                                  choices=imaging.ENCODINGS)
    shard_mb: float = config.option(100.0, "target shard size in megabytes", above=0)
    workers: int = config.option(0, "decoding processes; 0 = one per CPU core (more are capped at that)",
                                at_least=0)
    limit: int | None = config.option(None, "use only the first N manifest rows (quick trials)", at_least=1)
    strict: bool = config.option(False, "stop at the first unusable row or image instead of skipping it")
    overwrite: bool = config.option(False, "replace a different earlier build in --out")
    runner: str = config.option("local", "local: a process pool on this machine; beam: an Apache Beam "
                                         "pipeline (pip install -e .[beam])", choices=RUNNERS)
    beam_option: list[str] = config.option([], "a Beam pipeline flag passed through untouched, e.g. "
                                               "--beam-option=--runner=FlinkRunner (repeatable)")


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(BuildConfig, argv, prog="python -m cxr_tf.build_records",
                            description="Build sharded TFRecords from a chest X-ray dataset.")

    from cxr_tf.datasets import splits
    from cxr_tf.datasets import DATASETS
    from cxr_tf.records import build

    manifest = DATASETS.get(cfg.dataset)(cfg)
    if cfg.limit is not None:
        manifest.frame = manifest.frame.head(cfg.limit).reset_index(drop=True)
    manifest = splits.assign_splits(manifest, cfg.split or "auto", val=cfg.val, test=cfg.test,
                                    seed=cfg.seed, classes=cfg.split_classes or None,
                                    uncertainty=cfg.split_uncertainty,
                                    propagate_parents=cfg.split_propagate_parents)
    options = build.RecordOptions(image_size=cfg.image_size, resize=cfg.resize, encoding=cfg.encoding,
                                  shard_mb=cfg.shard_mb, seed=cfg.seed)
    common = dict(strict=cfg.strict, overwrite=cfg.overwrite, build_args=config.to_dict(cfg))
    if cfg.runner == "beam":
        content = _beam().build_records_beam(manifest, cfg.out, options, beam_options=cfg.beam_option, **common)
    else:
        content = build.build_records(manifest, cfg.out, options, workers=worker_count(cfg.workers),
                                      **common)
    print(splits.format_split_table(manifest))
    shards = sum(len(s.shards) for s in content.splits.values())
    examples = sum(s.examples for s in content.splits.values())
    skipped = content.skipped.total
    print(f"wrote {examples} records in {shards} shards to {cfg.out}; {skipped} skipped"
          + (f" (listed in {cfg.out}/skipped.csv)" if skipped else ""))
    return 0


def _beam():
    try:
        from cxr_tf.records import beam
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("apache_beam"):
            raise UserError("--runner beam needs Apache Beam: pip install -e .[beam]") from None
        raise
    return beam


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
