"""Optimiser state moves between devices without changing the optimisation."""

import torch

from verl.utils.offload import move_optimizer_state


def _step(model, opt, seed):
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed))
    model(x).square().sum().backward()
    opt.step()
    opt.zero_grad()


def test_moves_moments_but_not_step_counters():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _step(model, opt, 0)
    moved = move_optimizer_state(opt, "meta")
    assert moved == 2 * 4 * (3 * 2 + 2)  # exp_avg and exp_avg_sq, fp32, weight and bias
    for state in opt.state.values():
        assert state["exp_avg"].is_meta and state["exp_avg_sq"].is_meta
        assert not state["step"].is_meta


def test_round_trip_keeps_the_trajectory():
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.AdamW(a.parameters(), lr=1e-2)
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-2)
    for seed in range(3):
        _step(a, opt_a, seed)
        _step(b, opt_b, seed)
        move_optimizer_state(opt_b, "cpu")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
