"""``python -m cxr_tf.fit``: train a model zoo network on records, from flags or a ``pipelines/*.toml`` recipe.

Examples:
    python -m cxr_tf.fit --records records/chexpert --model densenet121 --enhance
    python -m cxr_tf.fit --recipe pipelines/s1_chexpert_densenet121.toml --set epochs=3
    python -m cxr_tf.fit --recipe runs/demo/config.toml        # repeat (or resume) a run
"""

from __future__ import annotations

import sys
from typing import Sequence

from cxr_tf import cli, cli_options
from cxr_tf.training.fit_config import FitConfig


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(FitConfig, argv, prog="python -m cxr_tf.fit", recipes=True,
                            description="Train a chest X-ray classifier on records built by build_records.")
    from cxr_tf.evaluation import provenance
    from cxr_tf.records import info as records_info
    from cxr_tf.training import strategy
    from cxr_tf.training.fit import train

    with records_info.naming_damaged_shards(cfg.records):
        summary = train(cfg)
    if not summary.finished_earlier and strategy.is_chief():  # only the chief writes the run directory
        provenance.record(summary.run, "fit", argv)
    best = summary.best
    print(f"{summary.run}: {summary.epochs} epochs, best {summary.monitor} "
          + ("n/a" if best is None else f"{best:.4f}")
          + f", {summary.parameters:,} parameters"
          + (" (finished earlier; nothing trained)" if summary.finished_earlier else ""))
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
