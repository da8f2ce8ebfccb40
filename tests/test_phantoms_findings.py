"""Finding renderers: each draws where its box says, inside the image, and fades with difficulty."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_tf.phantoms import anatomy
from cxr_tf.phantoms.anatomy import FIELD_CM
from cxr_tf.phantoms.findings import FINDINGS, Strength

SIZE = 96
LOCALIZED = ["Atelectasis", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
             "Consolidation"]


def _chest(seed: int) -> anatomy.Chest:
    body = anatomy.sample_anatomy(np.random.default_rng(seed), "F", False, ctr_margin=0.05)
    return anatomy.render(body, SIZE)


def _draw(finding: str, seed: int, difficulty: float = 0.5):
    """(change in total density, boxes) of one finding drawn on a fresh chest."""
    chest = _chest(seed)
    before = chest.density + chest.markings
    boxes = FINDINGS.get(finding)(chest, np.random.default_rng(seed), Strength.from_difficulty(difficulty))
    return np.abs(chest.density + chest.markings - before), boxes


@pytest.mark.parametrize("finding", LOCALIZED)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_localized_finding_lies_inside_its_boxes(finding, seed):
    change, boxes = _draw(finding, seed)
    assert boxes
    inside = np.zeros(change.shape, bool)
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= SIZE and y + h <= SIZE
        inside[max(0, y - 2): y + h + 2, max(0, x - 2): x + w + 2] = True
    # Boxes are tight too: a box around the whole image would pass the first test only.
    assert change[inside].sum() >= 0.9 * change.sum()
    assert inside.mean() < 0.6


def test_cardiomegaly_box_is_the_heart():
    chest = _chest(0)
    (box,) = FINDINGS.get("Cardiomegaly")(chest, np.random.default_rng(0), Strength.from_difficulty(0.5))
    x, y, w, h = box
    assert w == pytest.approx(chest.heart_width, abs=2)
    assert box == chest.heart_box


def test_edema_is_diffuse_and_bilateral():
    change, boxes = _draw("Edema", 0)
    chest = _chest(0)
    assert boxes == []
    for lung in chest.lungs:
        assert change[lung > 0.5].mean() > 0.01


@pytest.mark.parametrize("finding", LOCALIZED + ["Edema"])
def test_difficulty_makes_findings_subtler(finding):
    easy = sum(_draw(finding, seed, difficulty=0.0)[0].sum() for seed in range(3))
    hard = sum(_draw(finding, seed, difficulty=1.0)[0].sum() for seed in range(3))
    assert hard < 0.7 * easy


@pytest.mark.parametrize("difficulty", [0.0, 1.0])
def test_nodules_stay_under_3cm_and_masses_over(difficulty):
    cm = SIZE / FIELD_CM
    nodules = [w for seed in range(6) for _, _, w, _ in _draw("Nodule", seed, difficulty)[1]]
    masses = [w for seed in range(6) for _, _, w, _ in _draw("Mass", seed, difficulty)[1]]
    # Boxes are padded by a quarter radius and a pixel on each side.
    assert max(nodules) <= 3.0 * cm * 1.25 + 2
    assert min(masses) >= 3.0 * cm * 1.25


def test_pneumothorax_removes_lung_markings_beyond_the_pleural_line():
    chest = _chest(5)
    markings = chest.markings.copy()
    (box,) = FINDINGS.get("Pneumothorax")(chest, np.random.default_rng(5), Strength.from_difficulty(0.5))
    x, y, w, h = box
    removed = markings - chest.markings
    assert removed.sum() > 0
    assert (removed[y:y + h, x:x + w].sum()) == pytest.approx(removed.sum(), rel=0.05)


def test_strength_spans_obvious_to_subtle():
    easy, default, hard = (Strength.from_difficulty(d) for d in (0.0, 0.5, 1.0))
    assert (default.contrast, default.scale) == pytest.approx((1.0, 1.0))
    assert easy.contrast > default.contrast > hard.contrast > 0
    assert easy.scale > default.scale > hard.scale > 0
    assert easy.ctr_margin > default.ctr_margin > hard.ctr_margin > 0
