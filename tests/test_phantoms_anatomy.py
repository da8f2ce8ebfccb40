"""Phantom anatomy: a radiograph's brightness order, drawn geometry, shared follow-up anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_tf.phantoms import acquisition, anatomy
from cxr_tf.phantoms.generate import ImageSpec, plan, render_image, rng_for


def _anatomy(seed: int = 0, cardiomegaly: bool = False) -> anatomy.Anatomy:
    return anatomy.sample_anatomy(np.random.default_rng(seed), "M", cardiomegaly, ctr_margin=0.05)


@pytest.mark.parametrize("cardiomegaly", [False, True])
def test_heart_outline_is_ctr_times_thoracic_width(cardiomegaly):
    body = _anatomy(3, cardiomegaly)
    heart = anatomy.heart_outline(body)
    lungs = np.concatenate([anatomy.lung_outline(body, 0), anatomy.lung_outline(body, 1)])
    heart_width = np.ptp(heart[:, 0])
    thoracic_width = np.ptp(lungs[:, 0])
    assert thoracic_width == pytest.approx(2 * body.thorax_half, rel=1e-5)
    assert heart_width / thoracic_width == pytest.approx(body.ctr, rel=1e-5)
    assert (heart_width / thoracic_width > anatomy.CTR_CUTOFF) == cardiomegaly


def test_film_is_white_where_dense_like_a_pa_radiograph():
    chest = anatomy.render(_anatomy(1), 96)
    image = acquisition.expose(chest.density + chest.markings, acquisition.sample_exposure(np.random.default_rng(0)),
                               np.random.default_rng(0))
    assert image.shape == (96, 96) and image.dtype == np.uint8
    lungs = (chest.lungs[0] + chest.lungs[1]) > 0.9
    x, y, w, h = chest.heart_box
    heart = image[y + h // 3: y + 2 * h // 3, x + w // 3: x + 2 * w // 3]
    outside = image[:, :3]  # air beside the body
    assert outside.mean() < image[lungs].mean() < heart.mean()


def test_lungs_lie_inside_the_image_and_apart():
    chest = anatomy.render(_anatomy(2), 64)
    for lung in chest.lungs:
        assert lung.shape == (64, 64) and 0.0 <= lung.min() and lung.max() <= 1.0
        assert (lung > 0.5).sum() > 0.08 * 64 * 64
    overlap = np.minimum(chest.lungs[0], chest.lungs[1])
    assert overlap.max() < 0.5


def test_follow_ups_share_anatomy_and_patients_differ():
    specs = [s for s in plan(60, 4, {"Effusion": 0.0}) if s.patient in (1, 2, 3, 4, 5, 6)]
    by_patient = {}
    for spec in specs:
        by_patient.setdefault(spec.patient, []).append(render_image(spec, 64, 0.5, seed=4))
    repeated = [p for p in by_patient.values() if len(p) > 1]
    assert repeated, "seed 4 should give a patient with follow-ups"
    first, second = repeated[0][:2]
    assert first.thorax_width == pytest.approx(second.thorax_width, rel=1e-5)
    assert not np.array_equal(first.image, second.image)
    same = np.corrcoef(first.image.ravel(), second.image.ravel())[0, 1]
    others = [p[0] for p in by_patient.values() if p[0] is not first]
    assert len({round(p.thorax_width, 3) for p in others}) == len(others)
    different = max(np.corrcoef(first.image.ravel(), o.image.ravel())[0, 1] for o in others)
    assert same > different


def test_follow_up_keeps_heart_on_its_side_of_the_cutoff():
    for seed in range(30):
        body = _anatomy(seed, cardiomegaly=seed % 2 == 0)
        later = anatomy.follow_up(body, rng_for(seed, 9, 0))
        assert (later.ctr > anatomy.CTR_CUTOFF) == (body.ctr > anatomy.CTR_CUTOFF)
        assert later.thorax_half == body.thorax_half


def test_render_needs_only_the_spec_not_the_order():
    specs = [ImageSpec(i, i + 1, 0, 50, "F", "PA", ("Nodule",), ("Nodule",), False) for i in range(3)]
    forwards = [render_image(s, 48, 0.5, seed=7).image for s in specs]
    backwards = [render_image(s, 48, 0.5, seed=7).image for s in reversed(specs)][::-1]
    for a, b in zip(forwards, backwards):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(forwards[0], render_image(specs[0], 48, 0.5, seed=8).image)
