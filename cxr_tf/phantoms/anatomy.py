"""A patient's chest anatomy: sampled once per patient, drawn as a density map per image.

Coordinates are fractions of the image side (x to the right, y down), so one ``Anatomy`` draws at
any size. The film is a PA projection read in the radiological convention: the patient's right
lung is on the image's left. Side 0 is the patient's right (image left), side 1 the patient's left.

Density is in units of "mid-torso soft-tissue thickness": 0 is air outside the body, about 1 the
soft tissue along the body's midline; lungs subtract (air), bones add. ``acquisition.expose``
turns density into film brightness (white = dense, as on a real radiograph).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

# NIH ChestX-ray14 films are ~2,700 px at 0.143 mm (Data_Entry_2017), i.e. ~39 cm across;
# lesion sizes in cm (nodule < 3 cm <= mass, Fleischner glossary) are converted with this.
FIELD_CM = 39.0

# Normal cardiothoracic ratios lie around 0.39-0.50 on PA films; > 0.5 defines cardiomegaly
# (Danzer 1919; the criterion NIH and CheXpert readers apply).
CTR_CUTOFF = 0.5
CTR_SPREAD = 0.1  # width of each class's ratio interval beyond the margin

SUBPIXEL = 4  # cv2 drawing with 4 fractional bits: outlines stay smooth at 64 px


@dataclass(frozen=True)
class Anatomy:
    """One patient's drawn geometry, in fractions of the image side.

    Attributes:
        sex: ``"M"`` or ``"F"`` (women get breast shadows and a slightly narrower chest).
        cx: body midline x.
        thorax_half: half the internal thoracic width (lateral lung border to midline).
        body_margin: soft tissue of the chest wall outside the lungs.
        apex_y: y of the lung apices.
        dome_y: y of the top of each hemidiaphragm (side 0, side 1); the left dome sits lower.
        recess_drop: how far below its dome each costophrenic recess reaches.
        medial_half: half width of the upper mediastinum.
        ctr: cardiothoracic ratio, heart width / thoracic width (> 0.5 is cardiomegaly).
        heart_left_share: share of the heart's width left of the midline (patient's left, ~2/3).
        heart_half_height: half the heart's height.
        spine_half: half width of the vertebral column.
        vertebra_period: height of one vertebra plus its disc.
        clavicle_y: y where the clavicles meet the manubrium.
        gastric_bubble: whether gas shows in the stomach fundus under the left dome.
        texture_seed: seed of the patient's lung parenchyma mottling.
        vessels: per side, a vessel tree from the hilum outwards: per generation (trunks,
            branches, twigs) a ``[K, 2, 2]`` float32 array of segments.
    """

    sex: str
    cx: float
    thorax_half: float
    body_margin: float
    apex_y: float
    dome_y: tuple[float, float]
    recess_drop: float
    medial_half: float
    ctr: float
    heart_left_share: float
    heart_half_height: float
    spine_half: float
    vertebra_period: float
    clavicle_y: float
    gastric_bubble: bool
    texture_seed: int
    vessels: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]

    def hilum(self, side: int) -> tuple[float, float]:
        """(x, y) of the hilum of ``side``, where the vessels and bronchi enter the lung."""
        return self.cx + _sign(side) * (self.medial_half + 0.045), 0.43


@dataclass
class Chest:
    """An anatomy drawn at one size; findings edit ``density`` and ``markings`` in place.

    Attributes:
        density: ``[S, S]`` float32, >= 0 (see module docstring for units).
        markings: ``[S, S]`` float32 lung vessel markings, added to density at exposure; kept
            apart so a pneumothorax can remove them beyond its pleural line.
        lungs: per side, ``[S, S]`` float32 in [0, 1], the aerated lung (heart cut out).
        outlines: per side, ``[N, 2]`` float32 outline of the lung in pixels, before the heart cut.
        heart_box: ``(x, y, w, h)`` of the heart silhouette in pixels.
        heart_width: drawn heart width in pixels.
        thorax_width: drawn internal thoracic width in pixels.
        anatomy: the anatomy drawn.
    """

    density: np.ndarray
    markings: np.ndarray
    lungs: tuple[np.ndarray, np.ndarray]
    outlines: tuple[np.ndarray, np.ndarray]
    heart_box: tuple[int, int, int, int]
    heart_width: float
    thorax_width: float
    anatomy: Anatomy

    @property
    def size(self) -> int:
        return self.density.shape[0]

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates as fractions of the side: ``(xs [1, S], ys [S, 1])`` float32."""
        axis = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size
        return axis[None, :], axis[:, None]


def _sign(side: int) -> int:
    return -1 if side == 0 else 1


def sample_anatomy(rng: np.random.Generator, sex: str, cardiomegaly: bool, ctr_margin: float) -> Anatomy:
    """Draw one patient's anatomy.

    Args:
        rng: the patient's generator (follow-ups reuse the result, not the generator).
        sex: ``"M"`` or ``"F"``.
        cardiomegaly: draw a cardiothoracic ratio above 0.5 (else below).
        ctr_margin: keep the ratio at least this far from 0.5 (smaller = harder to tell).
    """
    offset = ctr_margin + rng.uniform(0.0, CTR_SPREAD)
    ctr = CTR_CUTOFF + offset if cardiomegaly else CTR_CUTOFF - offset
    right_dome = rng.uniform(0.66, 0.74)
    anatomy = Anatomy(
        sex=sex,
        cx=0.5 + rng.normal(0.0, 0.012),
        thorax_half=rng.uniform(0.33, 0.39) - (0.015 if sex == "F" else 0.0),
        body_margin=rng.uniform(0.035, 0.075),
        apex_y=rng.uniform(0.09, 0.14),
        dome_y=(right_dome, right_dome + rng.uniform(0.01, 0.04)),
        recess_drop=rng.uniform(0.06, 0.1),
        medial_half=rng.uniform(0.045, 0.065),
        ctr=float(ctr),
        heart_left_share=rng.uniform(0.6, 0.72),
        heart_half_height=rng.uniform(0.1, 0.13),
        spine_half=rng.uniform(0.032, 0.042),
        vertebra_period=rng.uniform(0.055, 0.07),
        clavicle_y=rng.uniform(0.1, 0.15),
        gastric_bubble=bool(rng.random() < 0.7),
        texture_seed=int(rng.integers(2**31)),
        vessels=((), ()),
    )
    return dataclasses.replace(anatomy, vessels=(_vessels(rng, anatomy, 0), _vessels(rng, anatomy, 1)))


def _vessels(rng: np.random.Generator, anatomy: Anatomy, side: int, trunks: int = 9,
             generations: int = 3) -> tuple[np.ndarray, ...]:
    """A pulmonary vessel tree: trunks fan out from the hilum, each segment forks in two, shorter."""
    hx, hy = anatomy.hilum(side)
    outward = np.pi if side == 0 else 0.0
    angles = outward + _sign(side) * rng.uniform(-1.4, 1.4, trunks)
    starts = np.tile(np.array([hx, hy], np.float32), (trunks, 1))
    length = rng.uniform(0.07, 0.1, trunks)
    tree = []
    for _ in range(generations):
        ends = starts + length[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
        tree.append(np.stack([starts, ends], 1).astype(np.float32))
        fork = rng.uniform(0.25, 0.6, len(angles))
        angles = np.concatenate([angles - fork, angles + fork]) + rng.normal(0.0, 0.1, 2 * len(angles))
        starts = np.concatenate([ends, ends])
        length = np.concatenate([length, length]) * rng.uniform(0.6, 0.85, 2 * len(length))
    return tuple(tree)


def follow_up(anatomy: Anatomy, rng: np.random.Generator) -> Anatomy:
    """The same patient on another day: positioning and inspiration vary, the heart stays on its
    side of the cardiomegaly cut-off."""
    ctr = anatomy.ctr * rng.uniform(0.985, 1.015)
    if (ctr > CTR_CUTOFF) != (anatomy.ctr > CTR_CUTOFF):
        ctr = anatomy.ctr
    breath = rng.uniform(-0.015, 0.015)
    return dataclasses.replace(
        anatomy,
        cx=anatomy.cx + rng.normal(0.0, 0.008),
        dome_y=(anatomy.dome_y[0] + breath, anatomy.dome_y[1] + breath),
        ctr=float(ctr),
    )


def _fixed(points: np.ndarray, size: int) -> np.ndarray:
    """Fractional ``[N, 2]`` points as cv2's fixed-point int32 pixel coordinates."""
    return np.round(points * size * (1 << SUBPIXEL)).astype(np.int32)


def _fill(size: int, polygons: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [_fixed(p, size) for p in polygons], 255, cv2.LINE_AA, SUBPIXEL)
    return mask


def _soft(mask: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """A uint8 mask as float32 in [0, 1], blurred by ``sigma_fraction`` of the side."""
    sigma = max(0.5, sigma_fraction * mask.shape[0])
    return cv2.GaussianBlur(mask.astype(np.float32) * (1.0 / 255.0), (0, 0), sigma)


def lung_outline(anatomy: Anatomy, side: int) -> np.ndarray:
    """``[N, 2]`` float32 outline of one lung (fractions): apex, lateral wall, costophrenic
    recess, diaphragm dome, medial border."""
    a, sign = anatomy, _sign(side)
    recess_y = a.dome_y[side] + a.recess_drop
    u = np.linspace(0.0, 1.0, 20)
    width = 0.6 + 0.4 * np.sin(np.clip(u / 0.5, 0.0, 1.0) * np.pi / 2) ** 0.6
    lateral = np.stack([a.cx + sign * a.thorax_half * width, a.apex_y + u * (recess_y - a.apex_y)], 1)
    medial_x = a.cx + sign * a.medial_half
    lateral_x = a.cx + sign * a.thorax_half
    v = np.linspace(0.0, 1.0, 16)
    # The dome peaks a little medial of mid-lung: steep towards the sharp costophrenic angle,
    # gentle towards the cardiophrenic angle.
    dome_y = np.where(v < 0.55, a.dome_y[side] + a.recess_drop * ((0.55 - v) / 0.55) ** 2,
                      a.dome_y[side] + 0.03 * ((v - 0.55) / 0.45) ** 2)
    dome = np.stack([lateral_x + v * (medial_x - lateral_x), dome_y], 1)
    t = np.linspace(0.0, np.pi, 8)
    apex_mid = (medial_x + lateral[0, 0]) / 2
    apex = np.stack([apex_mid - (lateral[0, 0] - apex_mid) * np.cos(t), a.apex_y - 0.05 * np.sin(t)], 1)
    return np.concatenate([lateral, dome, [[medial_x, a.apex_y]], apex]).astype(np.float32)


def heart_outline(anatomy: Anatomy) -> np.ndarray:
    """``[N, 2]`` float32 heart silhouette, top (great vessels) to bottom (on the left dome).

    The right border bulges most at mid-height, the left border slopes down and out to the apex,
    as on a PA film. The cardiothoracic ratio is measured as radiologists do, the largest reach
    right of the midline plus the largest reach left of it, so by construction it is exactly
    ``ctr * 2 * thorax_half`` wide.
    """
    a = anatomy
    width = a.ctr * 2 * a.thorax_half
    right_reach, left_reach = (1.0 - a.heart_left_share) * width, a.heart_left_share * width
    bottom = a.dome_y[1] + 0.05
    top = bottom - 2 * a.heart_half_height - 0.06
    v = np.linspace(0.0, 1.0, 21)  # steps of 0.05 sample both borders at their widest (0.55, 0.8)
    ys = top + v * (bottom - top)
    inner = min(a.medial_half, right_reach, left_reach)
    right_x = a.cx - np.maximum(inner, right_reach * np.sin(np.pi * np.clip(v / 1.1, 0.0, 1.0)) ** 0.6)
    slope = np.clip(v / 0.8, 0.0, 1.0) ** 1.3
    left_x = a.cx + inner + (left_reach - inner) * slope * (1.0 - 0.12 * np.clip((v - 0.8) / 0.2, 0.0, 1.0) ** 2)
    return np.concatenate([np.stack([right_x, ys], 1), np.stack([left_x, ys], 1)[::-1]]).astype(np.float32)


def render(anatomy: Anatomy, size: int) -> Chest:
    """Draw ``anatomy`` as an ``[size, size]`` density map (see ``Chest``)."""
    a = anatomy
    xs = (np.arange(size, dtype=np.float32) + 0.5) / size
    xs, ys = xs[None, :], xs[:, None]
    dx = xs - a.cx

    body = _body(a, ys, dx)
    density = body * (0.9 + 0.15 * ys)  # the abdomen is thicker than the upper chest
    heart = heart_outline(a)
    mediastinum = _mediastinum(a, heart, size)
    outlines = (lung_outline(a, 0), lung_outline(a, 1))
    lungs = tuple(_soft(np.minimum(_fill(size, [o]), 255 - mediastinum), 0.006) for o in outlines)
    air = lungs[0] + lungs[1]
    # Air replaces more tissue where the chest is deepest (mid-lung) than at its lateral edge.
    depth = np.sqrt(np.clip(1.0 - (dx / (a.thorax_half * 1.1)) ** 2, 0.0, 1.0))
    texture = np.random.default_rng(a.texture_seed)
    grain = sum(weight * cv2.resize(texture.standard_normal((cells, cells)).astype(np.float32), (size, size),
                                    interpolation=cv2.INTER_CUBIC) for cells, weight in ((12, 0.03), (40, 0.015)))
    density -= air * (0.24 + 0.34 * depth + grain)
    density += 0.06 * _soft(_fill(size, [heart]), 0.004)  # blood-filled chambers: denser than fat
    density -= 0.16 * ((np.abs(dx) < 0.017) & (ys < 0.33)).astype(np.float32) * body  # trachea
    vertebrae = 0.85 + 0.15 * np.cos(2 * np.pi * ys / a.vertebra_period)  # discs between bodies
    density += 0.13 * np.clip((a.spine_half - np.abs(dx)) / 0.008, 0.0, 1.0) * vertebrae
    density += _bones(a, size) + _soft_tissue(a, size)
    for side in (0, 1):
        hx, hy = a.hilum(side)
        density += 0.12 * np.exp(-((xs - hx) ** 2 + (ys - hy) ** 2) / (2 * 0.03 ** 2)) * lungs[side]

    box = cv2.boundingRect(_fixed(heart, size) >> SUBPIXEL)
    return Chest(
        density=np.maximum(density, 0.0).astype(np.float32),
        markings=(_markings(a, size) * air).astype(np.float32),
        lungs=lungs,
        outlines=tuple(o * size for o in outlines),
        heart_box=_clip_box(box, size),
        heart_width=float(np.ptp(heart[:, 0])) * size,
        thorax_width=float(np.ptp(np.concatenate(outlines)[:, 0])) * size,
        anatomy=a,
    )


def _body(a: Anatomy, ys: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``[S, S]`` soft-tissue thickness in [0, 1]: an elliptic cylinder, widest at the shoulders,
    narrowing to the neck."""
    wall = a.thorax_half + a.body_margin
    half = np.interp(ys[:, 0], [0.0, 0.05, 0.13, 0.3, 1.0], [0.12, 0.26, wall + 0.07, wall, wall + 0.03])
    return np.sqrt(np.clip(1.0 - (dx / half[:, None].astype(np.float32)) ** 2, 0.0, 1.0))


def _mediastinum(a: Anatomy, heart: np.ndarray, size: int) -> np.ndarray:
    """uint8 mask of what separates the lungs: heart, upper mediastinum and aortic knob."""
    mask = _fill(size, [heart])
    corners = [_fixed(np.array(p), size).tolist() for p in ([a.cx - a.medial_half, a.apex_y - 0.05],
                                                              [a.cx + a.medial_half, a.dome_y[1]])]
    cv2.rectangle(mask, *corners, 255, -1, cv2.LINE_AA, SUBPIXEL)
    knob = _fixed(np.array([a.cx + a.medial_half + 0.012, 0.3]), size).tolist()
    cv2.circle(mask, knob, int(0.033 * size * (1 << SUBPIXEL)), 255, -1, cv2.LINE_AA, SUBPIXEL)
    return mask


def _soft_tissue(a: Anatomy, size: int) -> np.ndarray:
    """Breast shadows over the lower zones (women) and the gastric air bubble under the left dome."""
    extra = np.zeros((size, size), np.float32)
    ellipses = []
    if a.sex == "F":
        ellipses += [(0.1, 0.02, (a.cx + _sign(side) * 0.24, a.dome_y[side] + 0.02), (0.15, 0.1)) for side in (0, 1)]
    if a.gastric_bubble:
        ellipses.append((-0.25, 0.006, (a.cx + 0.15, a.dome_y[1] + 0.055), (0.045, 0.025)))
    for weight, blur, centre, axes in ellipses:
        mask = np.zeros((size, size), np.uint8)
        cv2.ellipse(mask, _fixed(np.array(centre), size).tolist(), _fixed(np.array(axes), size).tolist(), 0, 0, 360,
                    255, -1, cv2.LINE_AA, SUBPIXEL)
        extra += weight * _soft(mask, blur)
    return extra


def _markings(a: Anatomy, size: int) -> np.ndarray:
    """``[S, S]`` float32 vessel markings (before masking by the lungs), thicker near the hilum."""
    drawn = np.zeros((size, size), np.uint8)
    for side in (0, 1):
        for generation, segments in enumerate(a.vessels[side]):
            width = max(1, round((2.5 - 0.75 * generation) * size / 256))
            cv2.polylines(drawn, list(_fixed(segments, size)), False, 255, width, cv2.LINE_AA, SUBPIXEL)
    return 0.08 * _soft(drawn, 0.003)


def _bones(a: Anatomy, size: int) -> np.ndarray:
    """Ribs (posterior with a bright cortical rim around fainter marrow, anterior faint) and clavicles."""
    posterior, anterior, clavicles = [], [], []
    gap = (a.dome_y[0] + a.recess_drop - a.apex_y) / 9.0
    s = np.linspace(0.0, 1.0, 12)
    for side in (0, 1):
        sign = _sign(side)
        x = a.cx + sign * (a.spine_half + s * (a.thorax_half + 0.02 - a.spine_half))
        for i in range(10):
            y0 = a.apex_y + 0.01 + i * gap
            # Posterior ribs arch up and out from the spine, then fall towards the lateral wall;
            # anterior ribs run down and in towards the sternum.
            posterior.append(np.stack([x, y0 - 0.02 * np.sin(np.pi * s * 0.9) + 0.11 * s ** 2.5], 1))
            anterior.append(np.stack([a.cx + sign * a.thorax_half * (1.02 - 0.62 * s), y0 + 0.05 + 0.17 * s ** 1.2], 1))
        clavicles.append(np.array([[a.cx + sign * 0.035, a.clavicle_y + 0.02], [a.cx + sign * 0.15, a.clavicle_y],
                                   [a.cx + sign * 0.3, a.clavicle_y - 0.045]]))
    rib = 0.024 * size

    def stroke(lines: list[np.ndarray], width: float, sigma: float) -> np.ndarray:
        mask = np.zeros((size, size), np.uint8)
        cv2.polylines(mask, [_fixed(line, size) for line in lines], False, 255, max(1, round(width)),
                      cv2.LINE_AA, SUBPIXEL)
        return _soft(mask, sigma)

    return (0.12 * stroke(posterior, rib, 0.002) - 0.05 * stroke(posterior, 0.45 * rib, 0.002)
            + 0.075 * stroke(anterior, 0.7 * rib, 0.003) + 0.2 * stroke(clavicles, 0.028 * size, 0.002))


def _clip_box(box: tuple[int, int, int, int], size: int) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(size, x + w), min(size, y + h)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)
