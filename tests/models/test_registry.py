"""The model registry: names, errors, and loading the tiny OpenVLA-OFT checkpoint by name."""

from __future__ import annotations

import pytest

from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
from verl.models.registry import available_models, load_policy, register_model


def test_openvla_oft_is_registered(tiny_checkpoint):
    assert "openvla-oft" in available_models()
    policy = load_policy("openvla-oft", tiny_checkpoint, unnorm_key="libero_spatial")
    assert isinstance(policy, OpenVLAOFTPolicy) and policy.unnorm_key == "libero_spatial_no_noops"


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match="openvla-oft"):
        load_policy("openvla-7b", "/nonexistent")


def test_duplicate_registration_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_model("openvla-oft")(lambda path: None)
