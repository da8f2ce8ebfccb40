"""``python -m cxr_tf.manifest``: read a dataset's labels, summarise them, optionally split and save.

Examples:
    python -m cxr_tf.manifest --dataset nih --labels Data_Entry_2017_v2020.csv.gz --summary --json
    python -m cxr_tf.manifest --dataset chexpert --labels CheXpert-v1.0-small --split multilabel \\
        --out chexpert_manifest.csv
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence

from cxr_tf import cli, cli_options, config, reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig

log = reporting.logger("manifest")


@dataclasses.dataclass(kw_only=True)
class ManifestConfig(SourceConfig):
    """Flags of the manifest command: the adapter and split flags plus what to print or write."""

    summary: bool = config.option(False, "print rows, patients and label states per class (the default "
                                         "when --out is not given)")
    json: bool = config.option(False, "print the summary as JSON")
    out: str | None = config.option(None, "write the manifest CSV here, with a split column (--split "
                                          "defaults to auto then)")


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(ManifestConfig, argv, prog="python -m cxr_tf.manifest",
                            description="Read a chest X-ray dataset's labels into one manifest; summarise, split, save.")
    if cfg.out is not None and cfg.split is None:
        cfg.split = "auto"
    from cxr_tf.datasets import splits
    from cxr_tf.datasets import load_manifest

    manifest = load_manifest(cfg)
    if len(manifest.skipped):
        log.warning("%d row(s) skipped; first: %s %s", len(manifest.skipped),
                    manifest.skipped["path"].iloc[0], manifest.skipped["reason"].iloc[0])
        log.info("skipped by reason: %s", manifest.skipped["reason"].map(mf.reason_category).value_counts().to_dict())
    if cfg.out is not None:
        manifest.frame.to_csv(cfg.out, index=False)
        log.info("wrote %d rows to %s", len(manifest), cfg.out)
    if cfg.summary or cfg.out is None:
        summary = manifest.summary()
        if cfg.json:
            print(json.dumps(summary, indent=2))
        else:
            print(format_summary(summary))
            if cfg.split is not None:
                print(splits.format_split_table(manifest))
    if cfg.dataset == "csv" and cfg.patient_col is None:
        log.info("patients: no --patient-col, so each image path counts as its own patient")
    return 0


def format_summary(summary: dict) -> str:
    """``Manifest.summary()`` as an aligned text table: one row per class, one column per state."""
    states = ("positive", "negative", "uncertain", "blank")
    width = max([len(name) for name in summary["classes"]] + [5])
    lines = [f"rows {summary['rows']}, patients {summary['patients']}",
             f"{'class':{width}} " + " ".join(f"{s:>9}" for s in states)]
    for name, counts in summary["classes"].items():
        lines.append(f"{name:{width}} " + " ".join(f"{counts[s]:>9}" for s in states))
    return "\n".join(lines)


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
