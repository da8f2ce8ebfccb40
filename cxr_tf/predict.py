"""``python -m cxr_tf.predict``: per-class probabilities and thresholded labels for image files.

``--model`` is a run directory, an exported ``.keras`` model or an exported SavedModel
(``python -m cxr_tf.export``). Inputs are image files (PNG, JPEG, DICOM; any size; 8/16-bit;
gray/RGB/RGBA), directories (searched recursively for .png/.jpg/.jpeg/.dcm/.dicom) and CSV files with
a ``path`` column (relative to the CSV's directory). Files that cannot be used are listed with the
reason (``error``) and counted in the summary line on stderr; they never stop the others.

Exit codes: 0 at least one image predicted; 1 every image failed; 2 a usage mistake (bad flag, missing
input, CSV without a ``path`` column, not a model).

Examples:
    python -m cxr_tf.predict --model runs/demo scans/ --format csv --out predictions.csv
    python -m cxr_tf.predict --model runs/demo/export/savedmodel a.png b.dcm
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.errors import UserError
from cxr_tf.registry import lazy


@dataclasses.dataclass(kw_only=True)
class PredictConfig:
    """Flags of predict."""

    model: str = config.required("run directory, exported .keras model (or its directory) or exported "
                                 "SavedModel directory")
    inputs: list[str] = config.option([], "images, directories or CSV files (also accepted as positional "
                                          "arguments)")
    format: str = config.option("json", "output format",
                                choices=lazy("cxr_tf.serving.predict", "OUTPUT_FORMATS"))
    out: str = config.option("", "output file (default: standard output)")
    batch_size: int = config.option(32, "images per model call", at_least=1)


def parse(argv: Sequence[str]) -> PredictConfig:
    """``PredictConfig`` from flags plus positional ``IMAGE|DIR|CSV`` arguments."""
    prog = "python -m cxr_tf.predict"
    cfg = cli_options.parse_with_positionals(PredictConfig, argv, prog, "Predict chest X-ray findings for image files.",
                                             field="inputs", metavar="IMAGE|DIR|CSV")
    if not cfg.inputs:
        raise UserError(f"{prog}: give at least one IMAGE, DIR or CSV (see --help)")
    return cfg


def main(argv: Sequence[str]) -> int:
    cfg = parse(argv)
    from cxr_tf.io import imaging
    from cxr_tf.serving import predict

    items = predict.collect(cfg.inputs)
    if not items:
        raise UserError(f"no images in {' '.join(cfg.inputs)} (searched for {', '.join(imaging.IMAGE_SUFFIXES)})")
    model = predict.load_model(cfg.model)
    predictions = predict.predict(model, items, cfg.batch_size)
    if cfg.out:
        with open(cfg.out, "w", newline="") as fh:
            predict.write(predictions, model, cfg.format, fh)
    else:
        predict.write(predictions, model, cfg.format, sys.stdout)
    counts = predict.summary(predictions)
    print(f"predicted {counts['predicted']} of {counts['images']} images, {counts['failed']} failed"
          + (" (see the error field)" if counts["failed"] else "") + (f"; wrote {cfg.out}" if cfg.out else ""),
          file=sys.stderr)
    return 0 if counts["predicted"] else 1


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
