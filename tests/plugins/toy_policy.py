"""A throwaway policy registered from outside `verl/`: an MLP over two camera images, a proprio vector
and the instruction's words, predicting a chunk of actions as independent 5-way categoricals (parallel
decoding). Saved and loaded as config.json + model.safetensors.

It exists to show that a policy is a package plus one registration: it implements
`verl.models.base.Policy` and nothing in `verl/` names it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from verl.models.base import ActOutput, token_log_probs
from verl.models.registry import register_model

BINS = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
VOCAB = ("move", "the", "point", "to", "right", "left")


class ToyBlock(nn.Module):
    """The trunk; FSDP shards it as its own unit."""

    def __init__(self, n_in: int, width: int):
        super().__init__()
        self.fc = nn.Linear(n_in, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x))


class ToyNet(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        n_img, size = config["num_images"], config["image_size"]
        n_in = n_img * size * size * 3 // 16 + config["proprio_dim"] + len(VOCAB)
        self.pool = nn.AvgPool2d(4)
        self.block = ToyBlock(n_in, config["width"])
        self.head = nn.Linear(config["width"], config["chunk"] * config["action_dim"] * len(BINS))

    def forward(self, images: torch.Tensor, proprio: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """images float [N, n_img, S, S, 3], proprio [N, p], words [N, V] -> logits [N, A, bins]."""
        n = images.shape[0]
        x = images.permute(0, 1, 4, 2, 3).reshape(n, -1, images.shape[2], images.shape[3])
        x = self.pool(x).reshape(n, -1)
        h = self.block(torch.cat([x, proprio, words], dim=1))
        return self.head(h).reshape(n, -1, len(BINS)).clone()  # FSDP2 wants a fresh tensor, not a view


class ToyPolicy(nn.Module):
    fsdp_wrap_classes = ("ToyBlock",)

    def __init__(self, model: ToyNet, device: torch.device):
        super().__init__()
        self.model = model.to(device)
        self.cfg = model.config
        self.camera_keys: list[str] | None = None

    # ------------------------------------------------------------------ contract
    @property
    def tokens_per_step(self) -> int:
        return self.cfg["chunk"] * self.cfg["action_dim"]

    @property
    def chunk_size(self) -> int:
        return self.cfg["chunk"]

    @property
    def action_dim(self) -> int:
        return self.cfg["action_dim"]

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device

    def bind_observations(self, cameras: Sequence[str], proprio_dim: int) -> None:
        if len(cameras) < self.cfg["num_images"] or proprio_dim != self.cfg["proprio_dim"]:
            raise ValueError(f"toy policy needs {self.cfg['num_images']} cameras and a 3-d proprio")
        self.camera_keys = list(cameras[: self.cfg["num_images"]])

    def _words(self, instructions: Sequence[str]) -> torch.Tensor:
        return torch.tensor([[float(w in str(t).split()) for w in VOCAB] for t in instructions])

    def step_batch(self, jpegs, instructions, proprio, action_tokens, cache=None) -> dict[str, torch.Tensor]:
        size = self.cfg["image_size"]
        images = np.stack(
            [[np.frombuffer(b, dtype=np.uint8).reshape(size, size, 3) for b in row] for row in jpegs]
        )
        batch = {
            "images": torch.from_numpy(images.copy()),
            "proprio": proprio,
            "words": self._words(instructions),
        }
        if action_tokens is not None:
            batch["action_tokens"] = action_tokens
        return batch

    def idle_batch(self) -> dict[str, torch.Tensor]:
        size, n = self.cfg["image_size"], self.cfg["num_images"]
        return {
            "images": torch.zeros(1, n, size, size, 3, dtype=torch.uint8),
            "proprio": torch.zeros(1, self.cfg["proprio_dim"]),
            "words": torch.zeros(1, len(VOCAB)),
            "action_tokens": torch.zeros(1, self.tokens_per_step, dtype=torch.long),
        }

    def action_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        d = self.device
        images = batch["images"].to(d).float() / 255.0
        return self.model(images, batch["proprio"].to(d).float(), batch["words"].to(d)).float()

    def log_prob(self, batch, temperature: float = 1.0):
        logits = self.action_logits(batch)
        return token_log_probs(logits, batch["action_tokens"].to(logits.device), temperature)

    @torch.no_grad()
    def act(self, observations, temperature=1.0, greedy=False, generator=None, row_seeds=None) -> ActOutput:
        keys = self.camera_keys or list(observations[0]["images"])[: self.cfg["num_images"]]
        records = [[np.ascontiguousarray(o["images"][k]).tobytes() for k in keys] for o in observations]
        proprio = torch.from_numpy(np.stack([o["proprio"] for o in observations]).astype(np.float32))
        batch = self.step_batch(records, [o["instruction"] for o in observations], proprio, None)
        logits = self.action_logits(batch)
        logp = torch.log_softmax(logits / temperature, dim=-1)
        if greedy:
            tokens = logits.argmax(-1)
        else:
            rows = []
            for i, row in enumerate(logp.exp()):
                g = torch.Generator().manual_seed(int(row_seeds[i])) if row_seeds is not None else generator
                rows.append(torch.multinomial(row, 1, generator=g)[:, 0])
            tokens = torch.stack(rows)
        chosen = logp.gather(-1, tokens[..., None])[..., 0]
        actions = BINS[tokens.numpy()].reshape(len(observations), self.cfg["chunk"], self.cfg["action_dim"])
        return ActOutput(tokens, chosen, actions.astype(np.float32), records, proprio)

    def encode_actions(self, actions: np.ndarray) -> torch.Tensor:
        idx = np.abs(np.asarray(actions)[..., None] - BINS).argmin(-1)
        return torch.from_numpy(idx.reshape(len(idx), -1))

    def enable_lora(self, rank, alpha, target_modules=None, dropout=0.0) -> None:
        raise ValueError("the toy policy has no LoRA support; set lora_rank=0")

    def gradient_checkpointing_enable(self) -> None:
        pass

    def save_pretrained(self, path, state_dict=None) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.cfg))
        state = state_dict if state_dict is not None else self.model.state_dict()
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path / "model.safetensors")
        )


def write_toy_checkpoint(path: str | Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = {"num_images": 2, "image_size": 16, "proprio_dim": 3, "chunk": 2, "action_dim": 3, "width": 32}
    ToyPolicy(ToyNet(config), torch.device("cpu")).save_pretrained(path)
    return Path(path)


@register_model("toy-mlp")
def load_toy_policy(path: str | Path, device: str | torch.device = "cpu", **kwargs) -> ToyPolicy:
    path = Path(path)
    model = ToyNet(json.loads((path / "config.json").read_text()))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return ToyPolicy(model, torch.device(device))
