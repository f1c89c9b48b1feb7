"""The original OpenVLA: the OFT module tree (towers, projector, Llama-2) with a causal LLM that emits
the action tokens one after another.

Sequence of row b (n_b = prompt length including BOS and the final 29871, P = 256 image patches at
224 px, A = 7 action tokens a_0..a_6 as vocabulary ids):
    [BOS] [P patch tokens] [prompt[1:n_b]] [a_0 ... a_{A-2}] [pad ...]
positions 0..T-1. Token a_k is read from the logits at P + n_b - 1 + k (the last prompt token for
a_0, then each fed action token), the same index as OFT's action slots. Rows are right-padded: under
causal attention the trailing pads are invisible to every real query, so one batch of prompts of
different lengths gives each row what it would get alone.

`forward` is the teacher-forced pass (the actor, SFT). `generate` samples the tokens with a key/value
cache: one prefill of the right-padded prompts, then A - 1 single-token steps whose position id is
per row (P + n_b + k) and whose padding mask keeps hiding the pad columns left inside the cache.
Logits are over the 256 action rows of lm_head (`full_vocab=False`, RLinf) or over the whole
vocabulary (`full_vocab=True`, the official evaluation and SimpleVLA-RL); tokens are action indices
0..255 in the first case and vocabulary ids in the second.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F

from verl.models.openvla_oft.configuration import OpenVLAOFTConfig
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction


@functools.cache
def _cache_arg() -> str:
    """LlamaModel's key/value cache argument: transformers 5 renamed `past_key_values` to `cache`."""
    from transformers.models.llama.modeling_llama import LlamaModel

    return "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"


def check_openvla_config(config: OpenVLAOFTConfig) -> None:
    """OpenVLA reads one image, no proprio, and predicts one action per call; ValueError otherwise."""
    if config.num_actions_chunk not in (None, 1):
        raise ValueError(
            f"OpenVLA predicts one action per call: num_actions_chunk (actor_rollout_ref.model."
            f"action_chunks_len / data.chunk) must be 1 or null, got {config.num_actions_chunk}"
        )
    if config.use_proprio:
        raise ValueError("OpenVLA takes no proprio input: use_proprio must be false")
    if config.num_images_in_input != 1:
        raise ValueError(
            f"OpenVLA reads one image per observation: num_images_in_input must be 1, "
            f"got {config.num_images_in_input}"
        )


class OpenVLAForActionPrediction(OpenVLAOFTForActionPrediction):
    """Vision towers -> projector -> causal Llama-2 -> autoregressive action logits.

    Parameter names and shapes are the released `openvla/openvla-7b*` keys (the OFT tree without a
    proprio projector), so the OFT loader and saver apply unchanged.
    """

    causal_llm = True

    def __init__(self, config: OpenVLAOFTConfig):
        check_openvla_config(config)
        super().__init__(config)

    # ------------------------------------------------------------------ pieces
    def head(self, full_vocab: bool) -> tuple[torch.Tensor, int]:
        """(lm_head rows the logits use [V, H], vocabulary id of token 0): the 256 action rows and
        31744, or every row and 0."""
        weight = self.language_model.lm_head.weight
        if full_vocab:
            return weight, 0
        begin = self.config.action_token_begin
        return weight[begin : begin + self.config.n_action_bins], begin

    def prefix_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 6, S, S] normalised pixels -> projected patch embeddings [N, P, H]."""
        if pixel_values.shape[1] != 6:
            raise ValueError(f"pixel_values must have 6 channels (one image), got {pixel_values.shape[1]}")
        param = self.projector.fc1.weight
        return self.projector(self.vision_backbone(pixel_values.to(param.dtype)))

    def _embed_sequence(
        self, ids: torch.Tensor, text_mask: torch.Tensor, prefix: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [N, L'] (BOS first) and their mask, patches [N, P, H] -> embeddings [N, T, H] with
        the patches after BOS, and the 2-D key mask [N, T] (int64, 1 = token)."""
        text = self.language_model.model.embed_tokens(ids)
        embeds = torch.cat([text[:, :1], prefix, text[:, 1:]], dim=1)
        ones = torch.ones(ids.shape[0], prefix.shape[1], dtype=torch.long, device=ids.device)
        mask = torch.cat([text_mask[:, :1].long(), ones, text_mask[:, 1:].long()], dim=1)
        return embeds, mask

    def _run_llm(self, embeds: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor, cache=None):
        kwargs = {_cache_arg(): cache} if cache is not None else {}
        return self.language_model.model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=position_ids,
            use_cache=cache is not None,
            **kwargs,
        ).last_hidden_state

    # ------------------------------------------------------------------ teacher forcing
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        action_tokens: torch.Tensor,
        full_vocab: bool = False,
    ) -> torch.Tensor:
        """Logits of every action token given the ones before it, in one causal pass.

        input_ids [N, L] right-padded prompts (BOS ... 29871), attention_mask [N, L], pixel_values
        [N, 6, S, S], action_tokens [N, A] (action indices, or vocabulary ids when full_vocab)
        -> float logits [N, A, V] (V = 256, or the vocabulary size when full_vocab).
        """
        a = self.config.num_action_tokens
        if action_tokens.shape[1] != a:
            raise ValueError(f"action_tokens must have {a} columns, got {tuple(action_tokens.shape)}")
        weight, offset = self.head(full_vocab)
        prefix = self.prefix_embeddings(pixel_values)
        n, length = input_ids.shape
        lengths = attention_mask.long().sum(dim=1, keepdim=True)  # [N, 1] = n_b
        # Feed a_0 .. a_{A-2} right after each row's prompt; pads fill the rest.
        ids = F.pad(input_ids, (0, a - 1), value=self.config.pad_token_id)
        fed = lengths + torch.arange(a - 1, device=ids.device)[None]  # [N, A-1]
        ids = ids.scatter(1, fed, action_tokens[:, : a - 1].long() + offset)
        j = torch.arange(length + a - 1, device=ids.device)[None]
        embeds, mask = self._embed_sequence(ids, j < lengths + a - 1, prefix)
        position_ids = torch.arange(embeds.shape[1], device=ids.device).expand(n, -1)
        hidden = self._run_llm(embeds, mask, position_ids)  # [N, T, H]
        read = prefix.shape[1] + lengths - 1 + torch.arange(a, device=ids.device)[None]  # [N, A]
        action_hidden = hidden.gather(1, read[..., None].expand(-1, -1, hidden.shape[-1]))
        return F.linear(action_hidden, weight)

    # ------------------------------------------------------------------ cached sampling
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        choose: Callable[[torch.Tensor], torch.Tensor],
        full_vocab: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Emit the A action tokens one after another with a key/value cache.

        input_ids / attention_mask [N, L] right-padded, pixel_values [N, 6, S, S]; `choose(logits
        [N, V]) -> tokens [N]` picks each token (argmax or a sample) -> (tokens [N, A] int64, float
        logits [N, A, V] each token was chosen from).
        """
        from transformers import DynamicCache

        a = self.config.num_action_tokens
        weight, offset = self.head(full_vocab)
        prefix = self.prefix_embeddings(pixel_values)
        n = input_ids.shape[0]
        lengths = attention_mask.long().sum(dim=1, keepdim=True)  # [N, 1]
        embeds, mask = self._embed_sequence(input_ids, attention_mask.bool(), prefix)
        position_ids = torch.arange(embeds.shape[1], device=embeds.device).expand(n, -1)
        try:
            cache = DynamicCache(config=self.language_model.config)
        except TypeError:  # transformers < 4.56 builds it without the config
            cache = DynamicCache()
        hidden = self._run_llm(embeds, mask, position_ids, cache)  # [N, T, H]
        last = prefix.shape[1] + lengths - 1  # [N, 1]: position of each row's last prompt token
        h = hidden.gather(1, last[..., None].expand(-1, -1, hidden.shape[-1]))[:, 0]  # [N, H]
        tokens, logits = [], []
        for k in range(a):
            step_logits = F.linear(h, weight)  # [N, V]
            token = choose(step_logits).to(input_ids.device).long()
            tokens.append(token)
            logits.append(step_logits)
            if k == a - 1:
                break
            embed = self.language_model.model.embed_tokens(token + offset)[:, None]  # [N, 1, H]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            h = self._run_llm(embed, mask, last + 1 + k, cache)[:, 0]
        return torch.stack(tokens, dim=1), torch.stack(logits, dim=1)
