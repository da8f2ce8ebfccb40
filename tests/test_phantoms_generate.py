"""Phantom data sets: patients and follow-ups, prevalence, label noise, and labels that agree with
what is drawn and can be learned (but not trivially)."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from cxr_tf.phantoms.generate import DEFAULT_PREVALENCE, DRAWN, plan, render_image


def test_patients_have_one_to_four_follow_ups_numbered_in_order():
    specs = plan(500, 0, DEFAULT_PREVALENCE)
    assert [s.index for s in specs] == list(range(500))
    visits = Counter(s.patient for s in specs)
    assert set(visits.values()) <= {1, 2, 3, 4} and len(set(visits.values())) == 4
    for patient, count in visits.items():
        mine = [s for s in specs if s.patient == patient]
        assert [s.followup for s in mine] == list(range(count))
        assert len({(s.sex, s.holdout) for s in mine}) == 1


def test_prevalence_per_image_matches_the_request():
    wanted = {"Effusion": 0.3, "Nodule": 0.05, "Cardiomegaly": 0.2}
    specs = plan(4000, 1, wanted)
    counts = Counter(f for s in specs for f in s.findings)
    assert set(counts) == set(wanted)
    for finding, p in wanted.items():
        assert counts[finding] / len(specs) == pytest.approx(p, abs=0.03)


def test_cardiomegaly_belongs_to_the_patient_not_the_film():
    specs = plan(400, 2, {"Cardiomegaly": 0.3, "Effusion": 0.3})
    for patient in {s.patient for s in specs}:
        assert len({"Cardiomegaly" in s.findings for s in specs if s.patient == patient}) == 1


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_label_noise_changes_reports_not_ground_truth(noise):
    specs = plan(2000, 3, DEFAULT_PREVALENCE, label_noise=noise)
    wrong = sum(len(set(s.findings) ^ set(s.labels)) for s in specs) / (len(specs) * len(DRAWN))
    assert wrong == pytest.approx(noise, abs=0.01)


def test_single_label_plan_gives_each_patient_one_class():
    specs = plan(600, 4, {"Effusion": 0.3, "Pneumothorax": 0.3}, single_label=True)
    assert all(len(s.findings) <= 1 and s.labels == s.findings for s in specs)
    for patient in {s.patient for s in specs}:
        assert len({s.findings for s in specs if s.patient == patient}) == 1
    shares = Counter(s.findings for s in specs)
    assert shares[()] / len(specs) == pytest.approx(0.4, abs=0.08)


def test_holdout_share_picks_whole_patients():
    specs = plan(1000, 5, DEFAULT_PREVALENCE, holdout_share=0.2)
    patients = {s.patient: s.holdout for s in specs}
    assert sum(patients.values()) / len(patients) == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_drawn_cardiothoracic_ratio_exceeds_half_exactly_when_cardiomegaly(difficulty):
    specs = plan(80, 6, {"Cardiomegaly": 0.5, "Effusion": 0.3})
    labelled = []
    for spec in specs:
        phantom = render_image(spec, 48, difficulty, seed=6)
        labelled.append("Cardiomegaly" in spec.labels)
        assert (phantom.ctr > 0.5) == labelled[-1], spec
    assert 0 < sum(labelled) < len(labelled)


def test_boxes_lie_inside_the_image_and_belong_to_drawn_findings():
    for spec in plan(40, 7, {f: 0.3 for f in DRAWN}):
        phantom = render_image(spec, 64, 0.5, seed=7)
        assert set(phantom.boxes) <= set(spec.findings) - {"Edema"}
        for boxes in phantom.boxes.values():
            for x, y, w, h in boxes:
                assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 64 and y + h <= 64


def test_labels_are_learnable_from_pixels_but_not_trivially():
    """Logistic regression on 32x32 pixels separates the main findings; subtle ones stay hard."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    specs = plan(400, 0, {f: 0.3 for f in DRAWN})
    pixels = np.stack([cv2.resize(render_image(s, 64, 0.5, seed=0).image, (32, 32), interpolation=cv2.INTER_AREA)
                       for s in specs]).reshape(len(specs), -1).astype(np.float32) / 255.0
    train = np.array([s.patient % 4 != 0 for s in specs])  # held-out patients, not just images
    auc = {}
    for finding in DRAWN:
        y = np.array([finding in s.labels for s in specs])
        model = LogisticRegression(C=0.05, max_iter=300).fit(pixels[train], y[train])
        auc[finding] = roc_auc_score(y[~train], model.decision_function(pixels[~train]))
    for finding in ("Cardiomegaly", "Effusion", "Edema"):
        assert auc[finding] > 0.7, auc
    assert min(auc.values()) < 0.9, auc
