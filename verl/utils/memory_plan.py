"""Device memory per rank of the GRPO worker, phase by phase, from the model's shapes and the batch settings.

The plan mirrors what `ActorRolloutWorker` holds (see `verl/workers/fsdp_workers.py`):
- parameters: fp32 master weights sharded by FSDP2 over the ranks;
- gradients: fp32, sharded, for trainable parameters, alive from the first backward to the optimiser step;
- optimizer: AdamW's two fp32 moments per trainable parameter, sharded, alive from the first step on;
- rollout_weights: with more than one rank, a full replica in the rollout dtype (one rank samples
  through the actor itself);
- reference: the KL-loss reference policy, sharded like the actor, in the rollout dtype;
- fsdp_gather: the unsharded parameters of the FSDP units in flight (the root unit plus the current
  and the prefetched block) in the compute dtype, twice in backward (their unsharded gradients);
- transient_sync: one full parameter, gathered by the streamed weight sync (rollout dtype) or by the
  checkpoint's full state dict (fp32, sent to the host one parameter at a time);
- activations: from the shapes: sequence length x sequences per forward x the tensors a Llama
  decoder layer and a ViT block keep for backward (training) or hold at once (inference);
- host_staging: only when the device is the host (CPU runs): the full fp32 model read at start-up,
  and rank 0's full state dict while saving. On GPUs these live in host memory.

Start-up reads the checkpoint on the host (fp32) and `fully_shard` moves each rank's shard to the
device, so the device holds the shard, the replica and the reference, never the full fp32 model.
Everything here is arithmetic on integers; `model_shape` reads the counts off a model (meta device).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

PHASES = ("startup", "rollout", "old_log_prob", "update", "weight_sync", "checkpoint_save")
KINDS = (
    "parameters",
    "gradients",
    "optimizer",
    "rollout_weights",
    "reference",
    "fsdp_gather",
    "transient_sync",
    "activations",
    "host_staging",
)
ADAM_STATES = 2  # exp_avg and exp_avg_sq


@dataclass(frozen=True)
class VisionTower:
    tokens: int  # tokens per image through the blocks (patches + class/register tokens)
    width: int  # embedding dimension D
    mlp_width: int  # MLP hidden dimension M
    blocks: int  # blocks run (the features are taken before the last block)


@dataclass(frozen=True)
class ModelShape:
    params: int  # all parameters
    trainable: int  # parameters that get gradients and optimiser state
    largest_param: int  # elements of the largest parameter (the streamed transient)
    largest_trainable: int  # elements of the largest trainable parameter
    root_unit: int  # parameters outside every wrapped block (the FSDP root unit)
    largest_unit: int  # parameters of the largest wrapped block
    llm_hidden: int  # h
    llm_intermediate: int  # I
    llm_layers: int
    vision: tuple[VisionTower, ...]
    images: int  # images per observation
    prefix_tokens: int  # LLM tokens before the prompt: patches x images (+1 proprio)
    action_tokens: int  # A = chunk x action dim


@dataclass(frozen=True)
class PlanSettings:
    world_size: int
    update_sequences: int  # policy forwards per backward: ppo_micro_batch_size_per_gpu x traj_mini_batch_size
    log_prob_sequences: int  # log_prob_micro_batch_size_per_gpu x traj_mini_batch_size
    rollout_sequences: int  # rollout.micro_batch_size
    prompt_tokens: int = 48  # prompt length incl. BOS (LIBERO instructions give 30-50)
    master_bytes: int = 4  # fp32 master weights, gradients and Adam moments
    compute_bytes: int = 2  # bf16 mixed precision (4 when the actor computes in fp32)
    rollout_bytes: int = 2  # rollout replica and reference dtype
    reference: bool = False  # kl_loss_coef > 0
    gradient_checkpointing: bool = True
    param_offload: bool = False  # FSDP2 CPUOffloadPolicy: parameters, gradients and optimiser on the host
    optimizer_offload: bool = False  # Adam moments on the host outside the update phase
    host_is_device: bool = False  # CPU runs: count the host copies of start-up and saving (rank 0)


def sequence_tokens(shape: ModelShape, prompt_tokens: int) -> int:
    """LLM sequence length T = prefix + prompt (with BOS) + A action slots + 1 stop token."""
    return shape.prefix_tokens + prompt_tokens + shape.action_tokens + 1


def llm_layer_saved_bytes(tokens: int, hidden: int, intermediate: int, compute_bytes: int) -> int:
    """Bytes one Llama decoder layer keeps for backward over `tokens` tokens (sdpa/flash attention).

    Per token: the two RMSNorm inputs in fp32 (8h), and in the compute dtype the norm outputs (2h),
    q, k, v (3h), rotated q, k (2h), the attention output (h) and the MLP's gate, up, act(gate) and
    gate*up (4I).
    """
    return tokens * (8 * hidden + compute_bytes * (8 * hidden + 4 * intermediate))


def vit_block_saved_bytes(tokens: int, width: int, mlp_width: int, compute_bytes: int) -> int:
    """Bytes one ViT block keeps for backward: LayerNorm in/out x2, qkv, attention and projection
    outputs (10D) and fc1 out, GELU out (2M) per token."""
    return tokens * compute_bytes * (10 * width + 2 * mlp_width)


def training_activation_bytes(shape: ModelShape, sequences: int, s: PlanSettings) -> int:
    """Activations of one forward+backward over `sequences` decision steps.

    With checkpointing every layer keeps only its input, and one layer at a time is recomputed:
    its saved tensors plus as many again for the gradients flowing through it.
    """
    cb = s.compute_bytes
    t = sequence_tokens(shape, s.prompt_tokens) * sequences
    layer = llm_layer_saved_bytes(t, shape.llm_hidden, shape.llm_intermediate, cb)
    if s.gradient_checkpointing:
        llm = shape.llm_layers * t * shape.llm_hidden * cb + 2 * layer
    else:
        llm = shape.llm_layers * layer + layer
    vision = 0
    for tower in shape.vision:
        vt = tower.tokens * shape.images * sequences
        block = vit_block_saved_bytes(vt, tower.width, tower.mlp_width, cb)
        if s.gradient_checkpointing:
            vision += tower.blocks * vt * tower.width * cb + 2 * block
        else:
            vision += tower.blocks * block + block
    return llm + vision


def inference_activation_bytes(shape: ModelShape, sequences: int, compute_bytes: int, prompt: int) -> int:
    """Peak live tensors of a no-grad forward: the residual stream plus one layer's largest working
    set (normed input, q, k, v, attention output, MLP gate, up and product), LLM or vision tower."""
    t = sequence_tokens(shape, prompt) * sequences
    llm = t * compute_bytes * (7 * shape.llm_hidden + 3 * shape.llm_intermediate)
    vision = max(
        (tower.tokens * shape.images * sequences * compute_bytes * (7 * tower.width + 3 * tower.mlp_width))
        for tower in shape.vision
    )
    return max(llm, vision)


def plan(shape: ModelShape, s: PlanSettings) -> dict[str, dict[str, int]]:
    """Bytes per rank {phase: {kind: bytes}} for the phases in PHASES and the kinds in KINDS."""
    w = s.world_size
    on_device = 0 if s.param_offload else 1
    params = on_device * s.master_bytes * shape.params // w
    grads = on_device * s.master_bytes * shape.trainable // w
    optim = on_device * ADAM_STATES * s.master_bytes * shape.trainable // w
    optim_between = 0 if s.optimizer_offload else optim
    rollout = s.rollout_bytes * shape.params if w > 1 else 0
    reference = s.rollout_bytes * shape.params // w if s.reference else 0
    gather = s.compute_bytes * (shape.root_unit + 2 * shape.largest_unit)
    # The sync streams only trainable parameters after an update (LoRA: the adapters).
    sync = s.rollout_bytes * shape.largest_trainable if w > 1 else 0
    save = s.master_bytes * shape.largest_param
    staging = s.master_bytes * shape.params if s.host_is_device else 0
    resident = {"parameters": params, "optimizer": optim_between, "rollout_weights": rollout}
    resident["reference"] = reference
    phases = {
        "startup": {
            "parameters": params,
            "rollout_weights": rollout,
            "reference": reference,
            "host_staging": staging,
        },
        "rollout": {
            **resident,
            # One rank samples through the sharded actor itself, so its units are gathered as in a forward.
            "fsdp_gather": 0 if w > 1 else gather,
            "activations": inference_activation_bytes(
                shape, s.rollout_sequences, s.rollout_bytes if w > 1 else s.compute_bytes, s.prompt_tokens
            ),
        },
        "old_log_prob": {
            **resident,
            "fsdp_gather": gather,
            "activations": inference_activation_bytes(
                shape, s.log_prob_sequences, s.compute_bytes, s.prompt_tokens
            ),
        },
        "update": {
            **resident,
            "optimizer": optim,
            "gradients": grads,
            "fsdp_gather": 2 * gather,
            "activations": training_activation_bytes(shape, s.update_sequences, s),
        },
        "weight_sync": {**resident, "transient_sync": sync},
        "checkpoint_save": {**resident, "transient_sync": save, "host_staging": staging},
    }
    return {phase: {k: int(kinds.get(k, 0)) for k in KINDS} for phase, kinds in phases.items()}


def model_shape(
    model: nn.Module,
    wrap_class_names: tuple[str, ...],
    lora_rank: int = 0,
    lora_targets: tuple[str, ...] = (),
) -> ModelShape:
    """Read a `ModelShape` off an OpenVLA-OFT model (any device, meta included).

    lora_rank > 0 counts LoRA adapters r x (in + out) on every nn.Linear whose name ends in one of
    `lora_targets` as the only trainable parameters (the model itself is left untouched).
    """
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    units = [
        sum(p.numel() for p in m.parameters())
        for m in model.modules()
        if m is not model and type(m).__name__ in wrap_class_names
    ]
    total = sum(sizes.values())
    trainable, largest_trainable = total, max(sizes.values())
    if lora_rank > 0:
        adapted = [
            m
            for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in lora_targets
        ]
        trainable = sum(lora_rank * (m.in_features + m.out_features) for m in adapted)
        largest_trainable = max(lora_rank * max(m.in_features, m.out_features) for m in adapted)
        total += trainable
    c = model.config
    towers = []
    for vit in (model.vision_backbone.featurizer, model.vision_backbone.fused_featurizer):
        towers.append(
            VisionTower(
                tokens=vit.patch_embed.num_patches + vit.num_prefix_tokens,
                width=vit.embed_dim,
                mlp_width=vit.blocks[0].mlp.fc1.out_features,
                blocks=len(vit.blocks) - 1,
            )
        )
    return ModelShape(
        params=total,
        trainable=trainable,
        largest_param=max(sizes.values()),
        largest_trainable=largest_trainable,
        root_unit=sum(sizes.values()) - sum(units),
        largest_unit=max(units) if units else 0,
        llm_hidden=int(c.text_config["hidden_size"]),
        llm_intermediate=int(c.text_config["intermediate_size"]),
        llm_layers=int(c.text_config["num_hidden_layers"]),
        vision=tuple(towers),
        images=int(c.num_images_in_input),
        prefix_tokens=model.num_prefix_tokens(),
        action_tokens=c.num_action_tokens,
    )


def gib_by_kind(phase_bytes: dict[str, int]) -> dict[str, float]:
    return {k: round(v / 2**30, 3) for k, v in phase_bytes.items()}
