"""``python -m cxr_tf.report``: the report of evaluated runs, and a comparison table of several.

Each run gets ``report.md`` (figures in ``report_files/``) and a self-contained ``report.html``; with
several runs the comparison (model, parameters, trainable, time/epoch, epochs to best, mean AUC [CI],
accuracy, per-class AUC) and the paired comparison of every pair of runs on the images both saw (per
class dAUC with a patient-bootstrap CI and DeLong's p) are printed and written to ``--out``: a directory
(``comparison.md``, ``comparison.csv``, ``comparison.json``) or a ``.md`` file (CSV and JSON beside it).

Examples:
    python -m cxr_tf.report runs/demo
    python -m cxr_tf.report runs/densenet121 runs/efficientnetb4 --out runs/compare
    python -m cxr_tf.report runs/densenet121 runs/efficientnetb4 --out runs/compare.md
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

from cxr_tf import cli, cli_options
from cxr_tf.config import option
from cxr_tf.errors import UserError


@dataclasses.dataclass
class ReportConfig:
    """Flags of report (the run directories are also taken as positional arguments)."""

    runs: list[str] = option([], "run directories evaluated by python -m cxr_tf.evaluate")
    split: str = option("test", "evaluated split to report (the run's eval/<split>/)")
    out: str = option("compare.md", "comparison of several runs: a directory (comparison.md, .csv, .json) or a "
                                    "Markdown file ending in .md (the .csv and .json beside it)")
    resamples: int = option(1000, "patient-bootstrap resamples of the paired dAUC intervals")
    seed: int = option(0, "seed of the paired bootstrap")


def parse(argv: Sequence[str]) -> ReportConfig:
    prog = "python -m cxr_tf.report"
    cfg = cli_options.parse_with_positionals(ReportConfig, argv, prog, "Write the report of evaluated runs and compare "
                                             "them.", field="runs", metavar="RUN")
    if not cfg.runs:
        raise UserError(f"{prog}: give at least one run directory, e.g. {prog} runs/demo")
    return cfg


def main(argv: Sequence[str]) -> int:
    cfg = parse(argv)
    from cxr_tf.evaluation import compare, report
    from cxr_tf.evaluation.formatting import summary_table

    # All runs are read before any report is written, so a run not yet evaluated fails fast.
    evaluations = [report.load_evaluation(run, cfg.split) for run in cfg.runs]
    for ev in evaluations:
        md_path, html_path = report.write(ev)
        print(f"{ev.run.path}: {md_path}, {html_path}")
    if len(evaluations) == 1:
        print(summary_table(evaluations[0].metrics))
        return 0
    md_path, csv_path, json_path, table = compare.write_comparison(evaluations, cfg.out, resamples=cfg.resamples,
                                                                   seed=cfg.seed)
    print(table)
    print(f"comparison: {md_path}, {csv_path}, {json_path}")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
