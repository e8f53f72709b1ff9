"""Synthetic fluorescence scenes and acquisitions: determinism, the noise model, bad configurations."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from pixlearn.synthetic import fluorescence
from pixlearn.synthetic.fluorescence import FluorescenceConfig, acquire, make_denoising_pairs, make_scene

SMALL = FluorescenceConfig(shape=(64, 80))


def test_doctests() -> None:
    result = doctest.testmod(fluorescence)
    assert result.attempted > 0 and result.failed == 0


def test_the_same_generator_state_gives_the_same_pairs() -> None:
    first = make_denoising_pairs(3, SMALL, np.random.default_rng(4))
    again = make_denoising_pairs(3, SMALL, np.random.default_rng(4))
    other = make_denoising_pairs(3, SMALL, np.random.default_rng(5))
    for a, b in zip(first[0] + first[1], again[0] + again[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0], other[0][0])


def test_scenes_vary_and_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    scenes = [make_scene(SMALL, rng) for _ in range(6)]
    assert all(s.shape == (64, 80) and s.min() >= 0.0 and s.max() <= 1.0 for s in scenes)
    assert len({round(float(s.mean()), 4) for s in scenes}) == 6  # each its own mixture


def test_the_noise_is_poisson_around_the_clean_counts() -> None:
    """Without read noise the residual's variance equals the expected counts (Poisson), at each photon level."""
    scene = np.full((200, 200), 0.5, np.float32)
    for photons in (4.0, 100.0):
        cfg = FluorescenceConfig(photons=(photons, photons), background=(0.0, 0.0), read_noise=(0.0, 0.0))
        noisy, clean = acquire(scene, cfg, np.random.default_rng(1))
        assert clean.mean() == pytest.approx(0.5 * photons, rel=1e-5)
        assert (noisy - clean).mean() == pytest.approx(0.0, abs=0.05 * np.sqrt(photons))
        assert (noisy - clean).var() == pytest.approx(0.5 * photons, rel=0.05)
        assert np.all(noisy == np.round(noisy))  # photon counts
    cfg = FluorescenceConfig(photons=(100.0, 100.0), background=(0.0, 0.0), read_noise=(3.0, 3.0))
    noisy, clean = acquire(scene, cfg, np.random.default_rng(1))
    assert (noisy - clean).var() == pytest.approx(50.0 + 9.0, rel=0.05)  # Poisson plus read noise


def test_pairs_span_the_photon_range() -> None:
    noisy, clean = make_denoising_pairs(12, SMALL, np.random.default_rng(2))
    snr = [float(c.mean() / max((n - c).std(), 1e-6)) for n, c in zip(noisy, clean)]
    assert max(snr) > 3 * min(snr)
    assert all(n.shape == (64, 80, 1) and n.dtype == np.float32 for n in noisy)


@pytest.mark.parametrize("change", [{"shape": (8, 64)}, {"shape": (32, 32, 32)}, {"photons": (0.0, 10.0)},
                                    {"psf_sigma_px": (2.0, 1.0)}, {"spots": (-1, 4)}])
def test_bad_configurations_are_refused(change) -> None:
    with pytest.raises(ValueError, match="FluorescenceConfig"):
        FluorescenceConfig(**change)
