"""A contact sheet: a grid of phantoms titled with their findings and outlined with their boxes.

    python -m cxr_tf.phantoms.contact_sheet docs/contact_sheet.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cxr_tf.phantoms.generate import DRAWN, ImageSpec, Phantom, render_image


def showcase(count: int = 16) -> list[ImageSpec]:
    """``count`` specs of distinct patients: two normals, then each finding alone, then pairs."""
    singles = [(f,) for f in DRAWN]
    pairs = [("Cardiomegaly", "Effusion"), ("Edema", "Effusion"), ("Nodule", "Pneumothorax"),
             ("Atelectasis", "Mass")]
    sets = ([(), ()] + singles + pairs)[:count]
    return [ImageSpec(index=i, patient=i + 1, followup=0, age=40 + i, sex="MF"[i % 2], projection="PA",
                      findings=f, labels=f, holdout=False) for i, f in enumerate(sets)]


def save(path: Path, phantoms: list[Phantom], titles: list[str], columns: int = 4) -> None:
    """Write ``phantoms`` as a grid PNG at ``path`` (one panel per image, boxes in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = int(np.ceil(len(phantoms) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, phantom, title in zip(axes.ravel(), phantoms, titles):
        ax.imshow(phantom.image, cmap="gray", vmin=0, vmax=255)
        for boxes in phantom.boxes.values():
            for x, y, w, h in boxes:
                ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="red", linewidth=0.8))
        ax.set_title(title, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("docs/contact_sheet.png")
    specs = showcase()
    phantoms = [render_image(spec, 256, 0.5, seed=0) for spec in specs]
    titles = [(", ".join(s.findings) or "No Finding") + f"  (CTR {p.ctr:.2f})" for s, p in zip(specs, phantoms)]
    save(path, phantoms, titles)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
