"""One renderer per finding: draws it where it occurs in reality and returns its box.

A renderer edits ``chest.density`` (and ``chest.markings``) in place and returns one box
``(x, y, w, h)`` in pixels of the drawn image per lesion (two nodules, a bilateral effusion: two
boxes), or none for a diffuse finding (NIH boxes no edema). Names are NIH ChestX-ray14's
spellings. How visible a finding is comes from ``Strength`` (the ``--difficulty`` knob): lesion
contrast and size shrink as difficulty grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from cxr_tf.phantoms.anatomy import FIELD_CM, SUBPIXEL, Chest
from cxr_tf.registry import Registry

Box = tuple[int, int, int, int]
Renderer = Callable[[Chest, np.random.Generator, "Strength"], list[Box]]

FINDINGS: Registry[Renderer] = Registry("finding")


@dataclass(frozen=True)
class Strength:
    """How conspicuous findings are.

    Attributes:
        contrast: multiplies every lesion's added density (1 = the default difficulty 0.5).
        scale: multiplies lesion extents (nodules stay < 3 cm and masses > 3 cm whatever it is).
        ctr_margin: distance of the cardiothoracic ratio from the 0.5 cut-off, both ways.
    """

    contrast: float
    scale: float
    ctr_margin: float

    @classmethod
    def from_difficulty(cls, difficulty: float) -> "Strength":
        """``difficulty`` in [0, 1]: 0 obvious, 0.5 default, 1 subtle (contrast 0.4x, size 0.7x)."""
        return cls(contrast=1.6 - 1.2 * difficulty, scale=1.3 - 0.6 * difficulty,
                   ctr_margin=0.012 + 0.076 * (1.0 - difficulty))


def _grid(chest: Chest) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in pixels: ``(xs [1, S], ys [S, 1])`` float32."""
    xs, ys = chest.grid()
    return xs * chest.size, ys * chest.size


def _box(mask: np.ndarray, threshold: float = 0.5) -> Box | None:
    """Bounding box of ``mask > threshold``, or ``None`` when nothing passes."""
    binary = (mask > threshold).astype(np.uint8)
    if not binary.any():
        return None
    return tuple(int(v) for v in cv2.boundingRect(binary))


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel ``[N, 2]`` points as cv2's fixed-point int32 coordinates (``SUBPIXEL`` bits)."""
    return np.round(points * (1 << SUBPIXEL)).astype(np.int32)


def _step(z: np.ndarray) -> np.ndarray:
    """Logistic step, 0 -> 1 around ``z = 0`` (tanh form: no overflow far from the edge)."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _sides(rng: np.random.Generator, both: float) -> tuple[int, ...]:
    """One random side, or both with probability ``both``."""
    return (0, 1) if rng.random() < both else (int(rng.integers(2)),)


def _floor(lung: np.ndarray) -> np.ndarray:
    """``[S]`` float32 row of the lowest lung pixel in each column (-1 where the column has none)."""
    inside = lung > 0.5
    last = lung.shape[0] - 1 - np.argmax(inside[::-1], axis=0)
    return np.where(inside.any(axis=0), last, -1).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``[S, S]`` float32 band-limited noise, about zero mean, unit spread, ``cells`` blobs across."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _disc(chest: Chest, x: float, y: float, radius: float, amplitude: float) -> None:
    """Add a round opacity (a sphere's projected thickness) centred at pixel ``(x, y)``."""
    size = chest.size
    x0, x1 = max(0, int(x - radius) - 1), min(size, int(x + radius) + 2)
    y0, y1 = max(0, int(y - radius) - 1), min(size, int(y + radius) + 2)
    px = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    py = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    r2 = ((px - x) ** 2 + (py - y) ** 2) / max(radius, 0.5) ** 2
    chest.density[y0:y1, x0:x1] += amplitude * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))


def _lung_point(chest: Chest, rng: np.random.Generator, inset: float) -> tuple[float, float]:
    """A random pixel well inside either lung (at least ``inset`` pixels from its edge)."""
    lungs = ((chest.lungs[0] + chest.lungs[1]) > 0.5).astype(np.uint8)
    inner = cv2.distanceTransform(lungs, cv2.DIST_L2, 3) > inset
    candidates = np.flatnonzero(inner if inner.any() else lungs)
    index = int(candidates[rng.integers(candidates.size)])
    return index % chest.size + 0.5, index // chest.size + 0.5


def _union(boxes: list[Box | None]) -> Box | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def _present(boxes: list[Box | None]) -> list[Box]:
    return [b for b in boxes if b is not None]


def _pad(box: Box, pad: float, size: int) -> Box:
    x, y, w, h = box
    x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
    x1, y1 = min(size, int(np.ceil(x + w + pad))), min(size, int(np.ceil(y + h + pad)))
    return x0, y0, x1 - x0, y1 - y0


@FINDINGS.register("Cardiomegaly")
def cardiomegaly(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Already drawn by the anatomy (cardiothoracic ratio > 0.5); the box is the heart's."""
    return [chest.heart_box]


@FINDINGS.register("Effusion")
def effusion(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Pleural fluid filling the costophrenic recess: a blunted angle and a meniscus rising
    towards the lateral chest wall."""
    xs, ys = _grid(chest)
    boxes = []
    for side in _sides(rng, both=0.25):
        lung = chest.lungs[side]
        floor = _floor(lung)
        columns = np.flatnonzero(floor >= 0)
        lateral = (xs[0] - columns[0]) / max(1, columns[-1] - columns[0])
        lateral = np.clip(1.0 - lateral if side == 0 else lateral, 0.0, 1.0)
        depth = (0.04 + 0.1 * rng.random()) * strength.scale * chest.size
        level = floor.max() - depth - 0.05 * strength.scale * chest.size * lateral ** 2
        fluid = lung * _step((ys - level[None, :]) / (0.008 * chest.size))
        chest.density += (0.4 * strength.contrast) * fluid
        chest.markings *= 1.0 - fluid
        boxes.append(_box(fluid))
    return _present(boxes)


@FINDINGS.register("Pneumothorax")
def pneumothorax(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Air between chest wall and a collapsing lung: a thin visceral pleural line, and beyond it a
    lucent rim with no lung markings, largest at the apex and lateral wall (upright film)."""
    side = int(rng.integers(2))
    outline = chest.outlines[side]
    medial = outline[np.argmin(np.abs(outline[:, 0] - chest.anatomy.cx * chest.size))]
    anchor = np.array([medial[0], outline[:, 1].max()], np.float32)
    shrink = 1.0 - np.clip((0.1 + 0.22 * rng.random()) * strength.scale, 0.05, 0.5)
    collapsed = anchor + (outline - anchor) * shrink
    fixed = _fixed(collapsed)
    kept = np.zeros(chest.density.shape, np.uint8)
    cv2.fillPoly(kept, [fixed], 255, cv2.LINE_AA, SUBPIXEL)
    gap = chest.lungs[side] * (1.0 - kept.astype(np.float32) / 255.0)
    line = np.zeros(chest.density.shape, np.uint8)
    cv2.polylines(line, [fixed], True, 255, max(1, round(chest.size / 256)), cv2.LINE_AA, SUBPIXEL)
    near_gap = np.clip(cv2.GaussianBlur(gap, (0, 0), max(1.0, 0.01 * chest.size)) * 3.0, 0.0, 1.0)
    chest.density -= (0.1 * strength.contrast) * gap
    chest.density += (0.12 * strength.contrast) * (line.astype(np.float32) / 255.0) * near_gap * chest.lungs[side]
    chest.markings *= 1.0 - gap
    return _present([_box(gap)])


def _round_lesion(chest: Chest, rng: np.random.Generator, diameter_cm: float, amplitude: float,
                  lobes: int) -> Box:
    radius = diameter_cm / FIELD_CM * chest.size / 2
    x, y = _lung_point(chest, rng, inset=radius)
    _disc(chest, x, y, radius, amplitude)
    for angle in rng.uniform(0.0, 2 * np.pi, lobes):
        # Lobulated margins: smaller spheres budding off the main one.
        _disc(chest, x + 0.45 * radius * np.cos(angle), y + 0.45 * radius * np.sin(angle), 0.65 * radius,
              0.6 * amplitude)
    return _pad((x - radius, y - radius, 2 * radius, 2 * radius), 0.25 * radius + 1, chest.size)


@FINDINGS.register("Nodule")
def nodule(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """One or two round opacities under 3 cm (the Fleischner size that separates nodule from mass)."""
    count = 1 if rng.random() < 0.7 else 2
    return [_round_lesion(chest, rng, min(2.9, rng.uniform(0.9, 2.7) * strength.scale), 0.2 * strength.contrast,
                          lobes=0) for _ in range(count)]


@FINDINGS.register("Mass")
def mass(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """A lobulated round opacity over 3 cm."""
    return [_round_lesion(chest, rng, max(3.1, rng.uniform(3.2, 6.5) * strength.scale),
                          0.28 * strength.contrast, lobes=2)]


def _air_bronchograms(chest: Chest, region: np.ndarray) -> None:
    """Inside an airspace opacity the vessels vanish and the air-filled bronchi show dark."""
    chest.markings -= 1.6 * chest.markings * region


@FINDINGS.register("Consolidation")
def consolidation(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """A homogeneous lobar opacity with one sharp border (a fissure) and air bronchograms."""
    side = int(rng.integers(2))
    _, ys = _grid(chest)
    size = chest.size
    centre = rng.uniform(0.3, 0.6) * size
    half = (0.06 + 0.05 * rng.random()) * strength.scale * size
    fissure = _step((ys - (centre - half)) / (0.003 * size))
    lower = _step(((centre + half) - ys) / (0.02 * size))
    region = chest.lungs[side] * fissure * lower
    fill = 0.8 + 0.2 * _smooth_noise(rng, size, 6)
    chest.density += (0.32 * strength.contrast) * region * fill
    _air_bronchograms(chest, region)
    return _present([_box(region)])


@FINDINGS.register("Atelectasis")
def atelectasis(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Volume loss: an elevated hemidiaphragm, plus a plate-like (discoid) band in the lower zone."""
    side = int(rng.integers(2))
    lung = chest.lungs[side]
    size = chest.size
    _, ys = _grid(chest)
    floor = _floor(lung)
    rise = (0.025 + 0.035 * rng.random()) * strength.scale * size
    raised = lung * _step((ys - (floor[None, :] - rise)) / (0.006 * size))
    raised *= (floor >= 0)[None, :]
    chest.density += (0.42 * strength.contrast) * raised
    plate = np.zeros(chest.density.shape, np.uint8)
    y = rng.uniform(0.5, 0.6) * size
    tilt = rng.uniform(-0.04, 0.04) * size
    xs = np.flatnonzero(floor >= 0)
    start, length = rng.uniform(0.05, 0.4), rng.uniform(0.4, 0.6)
    x0, x1 = xs[0] + (xs[-1] - xs[0]) * np.array([start, start + length])
    ends = np.array([[x0, y - tilt], [x1, y + tilt]], np.float32)
    cv2.line(plate, *_fixed(ends).tolist(), 255, max(1, round(0.012 * size * strength.scale)), cv2.LINE_AA,
             SUBPIXEL)
    band = cv2.GaussianBlur(plate.astype(np.float32) / 255.0, (0, 0), max(0.5, 0.003 * size)) * lung
    chest.density += (0.25 * strength.contrast) * band
    return _present([_union([_box(raised), _box(band, 0.3)])])


def _patches(chest: Chest, rng: np.random.Generator, where: np.ndarray, cells: int, share: float) -> np.ndarray:
    """Ill-defined blotches covering about ``share`` of the ``where`` region, float32 in [0, 1]."""
    field = _smooth_noise(rng, chest.size, cells)
    inside = field[where > 0.5]
    threshold = np.quantile(inside, 1.0 - share) if inside.size else field.max()
    return np.clip((field - threshold) / 0.6, 0.0, 1.0) * where


@FINDINGS.register("Infiltration")
def infiltration(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Patchy, ill-defined opacities scattered through one or both lungs."""
    sides = _sides(rng, both=0.4)
    region = _patches(chest, rng, sum(chest.lungs[s] for s in sides), cells=10, share=min(0.6, 0.25 * strength.scale))
    chest.density += (0.2 * strength.contrast) * region
    return _present([_box(region * chest.lungs[s], 0.3) for s in sides])


@FINDINGS.register("Pneumonia")
def pneumonia(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Confluent airspace opacity in one lower zone, with air bronchograms."""
    side = int(rng.integers(2))
    _, ys = _grid(chest)
    top = rng.uniform(0.42, 0.55) * chest.size
    lower_zone = chest.lungs[side] * _step((ys - top) / (0.02 * chest.size))
    region = _patches(chest, rng, lower_zone, cells=7, share=min(0.85, 0.55 * strength.scale))
    chest.density += (0.36 * strength.contrast) * region
    _air_bronchograms(chest, region)
    return _present([_box(region, 0.3)])


@FINDINGS.register("Edema")
def edema(chest: Chest, rng: np.random.Generator, strength: Strength) -> list[Box]:
    """Bilateral perihilar ("bat-wing") haze with prominent vessels; diffuse, so no box."""
    xs, ys = chest.grid()
    haze = np.zeros(chest.density.shape, np.float32)
    spread = (0.11 + 0.04 * rng.random()) * strength.scale
    for side in (0, 1):
        hx, hy = chest.anatomy.hilum(side)
        haze += chest.lungs[side] * np.exp(-((xs - hx) ** 2 + ((ys - hy) / 1.3) ** 2) / (2 * spread ** 2))
    chest.density += (0.12 * strength.contrast) * haze
    chest.markings *= 1.0 + 0.3 * strength.contrast
    return []
