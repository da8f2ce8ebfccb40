"""``python -m cxr_tf.lr_find``: learning-rate range test, to choose fit's ``--base-lr`` and ``--lr``.

Takes every flag (and ``--recipe``) of ``python -m cxr_tf.fit``: the test trains the model, data, loss and
optimizer that fit would; fit's schedule, epochs and validation flags play no part. Writes
``lr_find.csv`` (step, lr, loss, smoothed loss) and ``lr_find.png`` (loss against the rate) into ``--out``
and prints the suggested rates. The trained weights are thrown away.

Examples:
    python -m cxr_tf.lr_find --records records/chexpert --model densenet121 --enhance --steps 200
    python -m cxr_tf.lr_find --recipe pipelines/s1_chexpert_densenet121.toml --max-lr 0.1
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from cxr_tf import cli, cli_options
from cxr_tf.config import option
from cxr_tf.training.fit_config import FitConfig


@dataclasses.dataclass(kw_only=True)
class LrFindConfig(FitConfig):
    """Flags of lr_find: fit's, plus the range test's own."""

    min_lr: float = option(1e-7, "learning rate of the first batch", above=0)
    max_lr: float = option(1.0, "learning rate of the last batch (rates rise geometrically in between)",
                           above=0)
    steps: int = option(100, "batches of the test, one learning rate each", at_least=2)
    smooth: float = option(0.98, "exponential smoothing of the loss curve (0 = none)", at_least=0, below=1)
    stop_factor: float = option(4.0, "stop once the smoothed loss exceeds this many times its lowest value",
                                above=1)
    out: str = option("", "directory of lr_find.csv and lr_find.png (default runs/lr_find/<model>)")


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(LrFindConfig, argv, prog="python -m cxr_tf.lr_find", recipes=True,
                            description="Learning-rate range test: loss against a geometrically rising rate.")
    from cxr_tf.training import lr_find

    test = lr_find.range_test(cfg, min_lr=cfg.min_lr, max_lr=cfg.max_lr, steps=cfg.steps, smooth=cfg.smooth,
                              stop_factor=cfg.stop_factor)
    suggestion = lr_find.suggest(test)
    out = Path(cfg.out or f"runs/lr_find/{cfg.model}")
    out.mkdir(parents=True, exist_ok=True)
    lr_find.write_csv(test, out / "lr_find.csv")
    lr_find.plot(test, suggestion, out / "lr_find.png", title=f"{cfg.model}, batch {cfg.batch_size}, {cfg.optimizer}")
    ended = f"diverged after {len(test.rates)}" if test.diverged else f"all {test.steps}"
    print(f"{out}: {ended} steps from {cfg.min_lr:g} to {test.rates[-1]:.3g}; steepest descent at "
          f"{suggestion.steepest:.3g}, minimum loss at {suggestion.minimum:.3g}")
    print(f"suggested: --base-lr {suggestion.base_lr:.2g} --lr {suggestion.lr:.2g}")
    if suggestion.minimum == test.rates[-1]:
        print("note: the loss was still falling at the last rate; a higher --max-lr shows where it diverges")
    elif suggestion.minimum == test.rates[0]:
        print("note: the loss was lowest at the first rate; a lower --min-lr shows where it starts to fall")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
