"""Which images exist (patients, follow-ups, findings, labels) and how each one is drawn.

``plan`` decides everything cheap and sequential (patients, ages, findings, label noise) from the
seed; ``render_image`` draws one image from its spec alone. Every random draw comes from a
generator derived from ``(seed, stream, key)`` (``rng_for``), never from shared state, so an image
is the same whichever worker draws it and in whatever order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_tf.phantoms import acquisition, anatomy
from cxr_tf.phantoms.findings import FINDINGS, Box, Strength

# NIH ChestX-ray14's order of the findings this generator draws.
DRAWN = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
         "Pneumothorax", "Consolidation", "Edema")

# Per-image prevalences, rounded from NIH ChestX-ray14's frontal films (Wang et al. 2017, Table 1:
# Infiltration 18 %, Effusion 12 %, Atelectasis 10 %, ...), raised for the rarest so that a small
# demo set still has positives of every finding.
DEFAULT_PREVALENCE = {
    "Atelectasis": 0.1, "Cardiomegaly": 0.08, "Effusion": 0.12, "Infiltration": 0.15, "Mass": 0.05,
    "Nodule": 0.06, "Pneumonia": 0.04, "Pneumothorax": 0.06, "Consolidation": 0.05, "Edema": 0.04,
}

# Images per patient (1-4): most NIH patients have one or two films.
FOLLOW_UPS = (0.45, 0.3, 0.15, 0.1)

_CHRONIC = "Cardiomegaly"  # heart size belongs to the patient, not to one film

_PLAN, _PATIENT, _IMAGE = 0, 1, 2
REPORT = 3  # stream of the report-level draws (CheXpert uncertain/blank states), used by writers


def rng_for(seed: int, stream: int, key: int) -> np.random.Generator:
    """The generator of one ``(stream, key)``, e.g. one image or one patient, under ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, key)))


@dataclass(frozen=True)
class ImageSpec:
    """One image to draw and describe.

    Attributes:
        index: 0-based position in the data set (the order of every label file).
        patient: 1-based patient number.
        followup: 0-based follow-up number of this patient.
        age: years at this study.
        sex: ``"M"`` or ``"F"``.
        projection: ``"PA"`` or ``"AP"``.
        findings: ground truth, the findings drawn (NIH names, ``DRAWN`` order).
        labels: what the report says: ``findings`` after label noise.
        holdout: the patient belongs to the source's own validation split (CheXpert ``valid``).
    """

    index: int
    patient: int
    followup: int
    age: int
    sex: str
    projection: str
    findings: tuple[str, ...]
    labels: tuple[str, ...]
    holdout: bool


@dataclass(frozen=True)
class Phantom:
    """One drawn image and its ground truth.

    Attributes:
        image: ``[S, S]`` uint8 film, white = dense.
        boxes: finding -> its lesions' ``(x, y, w, h)`` boxes in pixels (localized findings only).
        heart_width: drawn heart width, pixels.
        thorax_width: drawn internal thoracic width, pixels.
    """

    image: np.ndarray
    boxes: dict[str, list[Box]]
    heart_width: float
    thorax_width: float

    @property
    def ctr(self) -> float:
        """Cardiothoracic ratio of the drawing; > 0.5 exactly when Cardiomegaly was drawn."""
        return self.heart_width / self.thorax_width


def plan(n: int, seed: int, prevalence: dict[str, float], *, single_label: bool = False,
         label_noise: float = 0.0, holdout_share: float = 0.0) -> list[ImageSpec]:
    """The ``n`` images of a data set, grouped into patients of 1-4 follow-ups.

    Args:
        n: number of images.
        seed: the data set's seed.
        prevalence: finding -> probability per image (only these findings are drawn). Cardiomegaly
            is a property of the patient (heart size does not change between follow-ups).
        single_label: one finding or none per patient (class-per-folder data sets); then the
            prevalences are class shares and must sum to at most 1.
        label_noise: probability that the report gets a finding wrong (flipped, or in
            ``single_label`` mode another class); ground truth is unaffected.
        holdout_share: share of patients in the source's own validation split.
    """
    names = [f for f in DRAWN if f in prevalence]
    chances = np.array([prevalence[f] for f in names])
    if single_label and chances.sum() > 1.0 + 1e-9:
        raise ValueError(f"single-label class shares sum to {chances.sum():.3f} > 1")
    rng = rng_for(seed, _PLAN, 0)
    specs: list[ImageSpec] = []
    patient = 0
    while len(specs) < n:
        patient += 1
        visits = min(n - len(specs), 1 + int(rng.choice(len(FOLLOW_UPS), p=FOLLOW_UPS)))
        sex = "M" if rng.random() < 0.55 else "F"
        age = int(rng.integers(18, 86))
        holdout = bool(rng.random() < holdout_share)
        if single_label:
            chosen = rng.choice(len(names) + 1, p=[*chances, max(0.0, 1.0 - chances.sum())])
            lasting = {names[chosen]} if chosen < len(names) else set()
        else:
            lasting = {_CHRONIC} if rng.random() < prevalence.get(_CHRONIC, 0.0) else set()
        for followup in range(visits):
            drawn = set(lasting)
            if not single_label:
                draws = rng.random(len(names))
                drawn |= {f for f, d in zip(names, draws) if f != _CHRONIC and d < prevalence[f]}
            findings = tuple(f for f in DRAWN if f in drawn)
            specs.append(ImageSpec(
                index=len(specs), patient=patient, followup=followup, age=min(99, age + followup // 2),
                sex=sex, projection="PA" if rng.random() < 0.8 else "AP", findings=findings,
                labels=_report(findings, names, rng, label_noise, single_label), holdout=holdout,
            ))
    return specs


def _report(findings: tuple[str, ...], names: list[str], rng: np.random.Generator, noise: float,
            single_label: bool) -> tuple[str, ...]:
    """The findings a (fallible) reader reports."""
    flips = rng.random(len(names)) < noise
    if single_label:
        if not flips[0]:
            return findings
        other = rng.integers(len(names) + 1)
        return (names[other],) if other < len(names) else ()
    reported = {f for f, flip in zip(names, flips) if (f in findings) != flip}
    return tuple(f for f in DRAWN if f in reported)


def render_image(spec: ImageSpec, size: int, difficulty: float, seed: int) -> Phantom:
    """Draw ``spec`` at ``size`` x ``size`` pixels.

    The patient's anatomy comes from the patient's generator, so follow-ups share it (with the
    small changes of ``anatomy.follow_up``); everything else from the image's own generator.
    """
    strength = Strength.from_difficulty(difficulty)
    body = anatomy.sample_anatomy(rng_for(seed, _PATIENT, spec.patient), spec.sex,
                                  "Cardiomegaly" in spec.findings, strength.ctr_margin)
    rng = rng_for(seed, _IMAGE, spec.index)
    if spec.followup:
        body = anatomy.follow_up(body, rng)
    chest = anatomy.render(body, size)
    boxes = {}
    for finding in spec.findings:
        found = FINDINGS.get(finding)(chest, rng, strength)
        if found:
            boxes[finding] = found
    image = acquisition.expose(chest.density + chest.markings, acquisition.sample_exposure(rng), rng)
    return Phantom(image=image, boxes=boxes, heart_width=chest.heart_width, thorax_width=chest.thorax_width)
