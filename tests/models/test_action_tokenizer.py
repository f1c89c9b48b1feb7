"""Action tokens <-> bins <-> normalised values <-> robot units, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from verl.models.openvla_oft.action_tokenizer import (
    ActionTokenizer,
    NormStats,
    libero_gripper_postprocess,
    normalize,
    select_unnorm_key,
    unnormalize,
)

BEGIN = 31744  # vocabulary id of action index 0


def test_bins_and_centres():
    tok = ActionTokenizer(256)
    assert tok.bins.shape == (256,) and tok.bin_centers.shape == (255,)
    assert tok.bin_centers[0] == pytest.approx(-1 + 1 / 255)
    assert tok.bin_centers[127] == pytest.approx(0.0, abs=1e-12)
    assert tok.bin_centers[254] == pytest.approx(1 - 1 / 255)


def test_decode_matches_vocabulary_ids():
    tok = ActionTokenizer(256)
    # vocab id v -> k = clip(31999 - v, 0, 254) -> centre[k]
    for vocab_id, centre in [
        (31999, -1 + 1 / 255),
        (31872, -1 + 255 / 255),
        (31745, 1 - 1 / 255),
        (31744, 1 - 1 / 255),
    ]:
        assert tok.decode(np.array(vocab_id - BEGIN)) == pytest.approx(centre)


def test_encode_hand_cases():
    tok = ActionTokenizer(256)
    # a = -1 -> id 31999, a = 0 -> id 31872, a = 1 -> id 31744; values beyond [-1, 1] are clipped
    assert tok.encode(np.array([-1.0, 0.0, 1.0, -5.0, 5.0])).tolist() == [255, 128, 0, 255, 0]


def test_round_trip_within_half_a_bin():
    tok = ActionTokenizer(256)
    values = np.random.default_rng(0).uniform(-1, 1, 10_000)
    decoded = tok.decode(tok.encode(values))
    assert np.abs(decoded - values).max() <= 1 / 255 + 1e-12
    indices = np.arange(1, 256)  # index 0 and 1 share the top centre
    assert (tok.encode(tok.decode(indices)) == indices).all()


def test_unnormalize_hand_cases():
    stats = NormStats.from_stats(
        {
            "q01": [-1.0, 0.0, 0.2],
            "q99": [1.0, 2.0, 0.4],
            "min": [-3, -3, -3],
            "max": [3, 3, 3],
            "mask": [True, True, False],
        },
        "bounds_q99",
    )
    out = unnormalize(np.array([[0.0, 0.5, 0.7], [-1.0, 1.0, 0.0]]), stats)
    # 0.5 (n + 1)(hi - lo + 1e-8) + lo; the unmasked gripper passes through
    np.testing.assert_allclose(out, [[1e-8 / 2, 1.5 + 0.75e-8, 0.7], [-1.0, 2.0 + 1e-8, 0.0]], atol=1e-12)
    bounds = NormStats.from_stats({"q01": [0.0], "q99": [1.0], "min": [-2.0], "max": [2.0]}, "bounds")
    assert unnormalize(np.array([0.5]), bounds)[0] == pytest.approx(1.0)  # mask absent = all normalised


def test_token_to_robot_units():
    tok = ActionTokenizer(256)
    stats = NormStats.from_stats({"q01": [0.0], "q99": [2.0], "min": [0.0], "max": [2.0]}, "bounds_q99")
    # index 255 (id 31999) -> centre -1 + 1/255 -> 0.5 (1/255)(2 + 1e-8) = 1/255
    assert unnormalize(tok.decode(np.array([255])), stats)[0] == pytest.approx(1 / 255, rel=1e-6)


def test_normalize_inverts_unnormalize_and_clips():
    stats = NormStats.from_stats({"q01": [-0.5, 1.0], "q99": [0.5, 3.0], "mask": [True, False]}, "bounds_q99")
    n = np.array([[-0.3, 0.8], [0.9, 0.0]])
    np.testing.assert_allclose(normalize(unnormalize(n, stats), stats), n, atol=1e-7)
    assert normalize(np.array([10.0, 5.0]), stats).tolist() == [1.0, 5.0]


def test_libero_gripper_postprocess():
    actions = np.array([[0.1, 0, 0, 0, 0, 0, 0.0], [0, 0, 0, 0, 0, 0, 0.996], [0, 0, 0, 0, 0, 0, 0.5]])
    out = libero_gripper_postprocess(actions)
    assert out[:, -1].tolist() == [1.0, -1.0, 0.0]  # close -> +1, open -> -1, exactly 0.5 -> 0
    assert out[0, 0] == 0.1 and actions[0, -1] == 0.0  # other dims untouched, input not modified


def test_select_unnorm_key():
    stats = {"libero_spatial_no_noops": {}, "libero_10_no_noops": {}}
    assert select_unnorm_key(stats, "libero_spatial") == "libero_spatial_no_noops"
    assert select_unnorm_key({"only": {}}, None) == "only"
    with pytest.raises(ValueError, match="libero_10_no_noops"):
        select_unnorm_key(stats, "bridge")
    with pytest.raises(ValueError, match="unnorm_key"):
        select_unnorm_key(stats, None)
