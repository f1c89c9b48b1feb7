"""The original OpenVLA (autoregressive action tokens, causal Llama-2), registered as `openvla`.

It shares the OFT package's towers, projector, checkpoint I/O, processor and action tokenizer; only
the language-model pass differs (see `modeling`).
"""

from verl.models.openvla.modeling import OpenVLAForActionPrediction
from verl.models.openvla.policy import VOCABULARIES, OpenVLAPolicy

__all__ = ["VOCABULARIES", "OpenVLAForActionPrediction", "OpenVLAPolicy"]
