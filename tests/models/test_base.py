"""The pure maths of the policy contract (`verl.models.base`)."""

import math

import pytest
import torch

from verl.models.base import token_log_probs


def test_token_log_probs_and_entropy():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    lp, ent = token_log_probs(logits, torch.tensor([1, 0]), temperature=1.0)
    assert lp[0].item() == pytest.approx(math.log(0.25))
    assert ent[0].item() == pytest.approx(math.log(4))
    p0 = math.exp(2) / (math.exp(2) + 3)
    assert lp[1].item() == pytest.approx(math.log(p0), rel=1e-6)
    lp_t, _ = token_log_probs(logits, torch.tensor([1, 0]), temperature=2.0)
    assert lp_t[1].item() == pytest.approx(1 - math.log(math.exp(1) + 3), rel=1e-6)
