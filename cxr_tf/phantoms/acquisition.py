"""Exposure: a density map becomes an 8-bit film with its tube, detector and processing quirks.

Random parameters are drawn first (``sample_exposure``) and applied second (``expose``), as MONAI's
random transforms do, so an exposure can be reproduced or tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Exposure:
    """One film's acquisition.

    Attributes:
        attenuation: Beer-Lambert coefficient per density unit; higher = harder-looking film.
        gamma: film/processing curve applied to the normalised brightness (> 1 darkens mid-tones).
        level: brightness offset subtracted before the curve, in [0, 1] of full scale.
        heel: vertical brightness slope (anode heel effect), fraction of full scale top to bottom.
        blur: detector blur, Gaussian sigma as a fraction of the side.
        noise: detector noise, standard deviation as a fraction of full scale.
    """

    attenuation: float
    gamma: float
    level: float
    heel: float
    blur: float
    noise: float


def sample_exposure(rng: np.random.Generator) -> Exposure:
    """Draw an exposure within the range seen across hospitals' PA films."""
    return Exposure(
        attenuation=rng.uniform(1.6, 2.4),
        gamma=rng.uniform(1.2, 1.8),
        level=rng.uniform(0.0, 0.06),
        heel=rng.uniform(-0.06, 0.06),
        blur=rng.uniform(0.0008, 0.0025),
        noise=rng.uniform(0.008, 0.025),
    )


def expose(density: np.ndarray, exposure: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Film brightness of ``density``.

    Args:
        density: ``[S, S]`` float32 >= 0 (``anatomy`` units; ~1 = mid-torso soft tissue).
        exposure: the acquisition parameters.
        rng: draws the detector noise.

    Returns:
        ``[S, S]`` uint8, white = dense, soft tissue of the midline near 230.
    """
    size = density.shape[0]
    k = exposure.attenuation
    # Brightness is the absorbed share of the beam (Beer-Lambert), normalised so that the
    # midline soft tissue reaches ~0.9 whatever the attenuation.
    film = (1.0 - np.exp(-k * density)) / (1.0 - np.exp(-k * 1.05))
    film = np.clip(film - exposure.level, 0.0, None) ** exposure.gamma
    film = cv2.GaussianBlur(film.astype(np.float32), (0, 0), max(0.3, exposure.blur * size))
    ramp = (np.arange(size, dtype=np.float32) / size - 0.5)[:, None]
    film = film * (1.0 + exposure.heel * ramp)
    film += rng.standard_normal((size, size), dtype=np.float32) * exposure.noise
    return np.clip(film * 230.0 + 0.5, 0.0, 255.0).astype(np.uint8)
