"""OpenVLA-OFT (discrete action tokens) implemented natively: timm towers + transformers' Llama."""

from verl.models.openvla_oft.configuration import OpenVLAOFTConfig, openvla_7b, tiny
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
from verl.models.openvla_oft.policy import ActOutput, OpenVLAOFTPolicy, PolicyInputs
from verl.models.openvla_oft.processing import OpenVLAOFTProcessor

__all__ = [
    "ActOutput",
    "OpenVLAOFTConfig",
    "OpenVLAOFTForActionPrediction",
    "OpenVLAOFTPolicy",
    "OpenVLAOFTProcessor",
    "PolicyInputs",
    "openvla_7b",
    "tiny",
]
