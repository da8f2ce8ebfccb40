"""Learning-rate schedules at known iterations (Smith 2017's formula), and the registry's one signature."""

from __future__ import annotations

import pytest

from cxr_tf.training import schedules


@pytest.mark.parametrize("iteration, expected", [(0, 0.1), (50, 0.55), (100, 1.0), (150, 0.55), (200, 0.1),
                                                 (300, 1.0)])
def test_triangular_rises_and_falls_linearly_between_the_bounds(iteration, expected):
    assert schedules.cyclic_lr(iteration, 0.1, 1.0, 100, "triangular") == pytest.approx(expected)


def test_triangular2_halves_the_amplitude_every_cycle():
    assert schedules.cyclic_lr(100, 0.0, 1.0, 100, "triangular2") == pytest.approx(1.0)
    assert schedules.cyclic_lr(300, 0.0, 1.0, 100, "triangular2") == pytest.approx(0.5)
    assert schedules.cyclic_lr(500, 0.0, 1.0, 100, "triangular2") == pytest.approx(0.25)


def test_exp_range_decays_the_amplitude_by_gamma_per_iteration():
    assert schedules.cyclic_lr(100, 0.0, 1.0, 100, "exp_range", gamma=0.99) == pytest.approx(0.99 ** 100)


def test_cosine_warms_up_then_anneals_to_zero():
    schedule = schedules.CosineWithWarmup(1.0, total_steps=110, warmup_steps=10)
    assert schedule.rate(0, 0) == pytest.approx(0.1)
    assert schedule.rate(9, 0) == pytest.approx(1.0)
    assert schedule.rate(60, 0) == pytest.approx(0.5)
    assert schedule.rate(110, 0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", schedules.SCHEDULES.names())
def test_every_schedule_builds_from_the_same_keywords(name):
    callback = schedules.SCHEDULES.get(name)(base_lr=1e-4, max_lr=1e-3, steps_per_epoch=10, epochs=3,
                                             step_size_epochs=2.0, mode="triangular", warmup_epochs=1.0)
    assert callback is not None
