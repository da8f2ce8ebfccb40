"""``python -m cxr_tf.export``: a run's model as a ``.keras`` file or a self-contained SavedModel.

The SavedModel's ``serving_default`` signature takes encoded PNG/JPEG bytes and returns per-class
probabilities and thresholded labels, decoding and preprocessing inside: ``tf.saved_model.load`` users
need no cxr_tf. Layouts and signatures: ``cxr_tf.serving.export``.

Examples:
    python -m cxr_tf.export --run runs/demo --format savedmodel      # -> runs/demo/export/savedmodel
    python -m cxr_tf.export --run runs/demo --format keras --out models/demo_keras
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.registry import lazy


@dataclasses.dataclass(kw_only=True)
class ExportConfig:
    """Flags of export."""

    run: Path = config.required("run directory written by python -m cxr_tf.fit")
    format: str = config.required("keras (model.keras + metadata.json) or savedmodel (decoding, preprocessing "
                                  "and metadata inside)", choices=lazy("cxr_tf.serving.export", "FORMATS"))
    out: Path | None = config.option(None, "output directory (default RUN/export/FORMAT); an earlier export "
                                           "there is replaced")


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(ExportConfig, argv, prog="python -m cxr_tf.export",
                            description="Export a trained run's model for use without cxr_tf.")
    from cxr_tf.training import runs
    from cxr_tf.serving import export

    run = runs.load(cfg.run)
    start = time.perf_counter()
    out = export.export(run, cfg.format, cfg.out or cfg.run / "export" / cfg.format)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"{out}: {cfg.format} export of {run.path} ({', '.join(run.classes)}), "
          f"{size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
