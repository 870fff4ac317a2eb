"""A small transformer pretrained on one modular-arithmetic task and fine-tuned on a
related one (THEORY.md §5: "Transformers on modular arithmetic").  Fully synthetic.

Input tokens ``[a, b, =]`` with a, b ∈ {0, …, p−1} and ``=`` the token p; the model
predicts ``op(a, b) mod p`` at the last position.  ``op`` ∈ {add, sub, mul}.

- ``ft_split = "all"``: PT trains on ``n_pt`` pairs of all p² (``pt_op``); FT trains on
  ``n_ft`` pairs with ``ft_op`` and is tested on the remaining pairs (at most ``n_test``).
- ``ft_split = "heldout"``: operands a < ⌊p·(1 − heldout_frac)⌋ are PT's; FT trains
  and tests on pairs whose a is held out (the same op or another one).

Model: token + position embeddings, ``n_layers`` pre-LayerNorm blocks (multi-head
self-attention, ReLU MLP of 4·width), a final LayerNorm and a linear head on the last
position.  Layer groups for the init knobs: ``embed_attn`` (embeddings and attention),
``mlp``, ``head``.  Standard init: embeddings N(0, 1), linear maps N(0, 1/fan_in),
LayerNorm (1, 0).  Group g starts at s × scale_g × standard, with s = s_early for
embed_attn and mlp and s_late for the head (``workers.nets.common.layer_scales``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from workers.nets.common import CrossEntropyProblem, generator, layer_scales
from workers.nets.training import OptimConfig

OPS = ("add", "sub", "mul")


@dataclass(frozen=True)
class ModularConfig:
    p: int = 23
    width: int = 32
    n_layers: int = 1
    n_heads: int = 4
    pt_op: str = "add"
    ft_op: str = "sub"
    ft_split: str = "all"
    heldout_frac: float = 0.5
    n_pt: int = 0  # 0: every PT pair
    n_ft: int = 100
    n_test: int = 2000
    c_pt: float = 1.0
    lambda_pt: float = 0.0
    gamma_ft: float = 1.0
    pt_rescale: float = 1.0
    scale_embed_attn: float = 1.0
    scale_mlp: float = 1.0
    scale_head: float = 1.0


def apply_op(op: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    if op == "add":
        return (a + b) % p
    if op == "sub":
        return (a - b) % p
    if op == "mul":
        return (a * b) % p
    raise ValueError(f"op must be one of {OPS}, got {op!r}")


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=-1)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attended = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


class ModularTransformer(nn.Module):
    def __init__(self, p: int, width: int, n_layers: int, n_heads: int, n_out: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(p + 1, width)
        self.pos = nn.Embedding(3, width)
        self.blocks = nn.ModuleList(Block(width, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_out, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok(tokens) + self.pos.weight[None, : tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x[:, -1]))


def group_of(name: str) -> str:
    if name.startswith("head."):
        return "head"
    if ".fc1." in name or ".fc2." in name:
        return "mlp"
    if ".ln" in name or name.startswith("ln."):
        return "norm"
    return "embed_attn"


class ModularProblem(CrossEntropyProblem):
    workload = "transformer_modular_finetune"
    version = "transformer-modular-1"
    config_class = ModularConfig
    context_fields: dict[str, str] = {}

    def __init__(
        self,
        config: ModularConfig,
        seed: int,
        pt_optim: OptimConfig,
        ft_optim: OptimConfig,
        *,
        device: str = "cpu",
        amp: bool = False,
    ) -> None:
        c = config
        if c.width % c.n_heads:
            raise ValueError(f"width {c.width} is not divisible by n_heads {c.n_heads}")
        self.config, self.seed = config, seed
        self.pt_optim, self.ft_optim = pt_optim, ft_optim
        self.device, self.amp = device, amp
        a, b = torch.meshgrid(torch.arange(c.p), torch.arange(c.p), indexing="ij")
        a, b = a.reshape(-1), b.reshape(-1)
        if c.ft_split == "heldout":
            boundary = max(1, min(c.p - 1, math.floor(c.p * (1 - c.heldout_frac))))
            pt_pool, ft_pool = torch.where(a < boundary)[0], torch.where(a >= boundary)[0]
        else:
            pt_pool = ft_pool = torch.arange(c.p * c.p)
        gen = generator(seed, "modular-data")
        pt_pool = pt_pool[torch.randperm(len(pt_pool), generator=gen)]
        pt_index = pt_pool[: c.n_pt] if c.n_pt else pt_pool
        ft_pool = ft_pool[torch.randperm(len(ft_pool), generator=gen)]
        if c.n_ft >= len(ft_pool):
            raise ValueError(
                f"n_ft={c.n_ft} leaves no test pairs: the FT pool has {len(ft_pool)} pairs "
                f"(p={c.p}, ft_split={c.ft_split})"
            )
        ft_index, test_index = ft_pool[: c.n_ft], ft_pool[c.n_ft :][: c.n_test]
        equals = torch.full_like(a, c.p)
        tokens = torch.stack([a, b, equals], dim=1)

        def split(index: torch.Tensor, op: str) -> tuple[torch.Tensor, torch.Tensor]:
            labels = apply_op(op, a[index], b[index], c.p)
            return tokens[index].to(device), labels.to(device)

        self.x_pt, self.y_pt = split(pt_index, c.pt_op)
        self.x_ft, self.y_ft = split(ft_index, c.ft_op)
        self.x_test, self.y_test = split(test_index, c.ft_op)
        self._set_batches("modular")

    def pretrain_config(self) -> dict[str, Any]:
        c = asdict(self.config)
        for ft_only in ("ft_op", "n_ft", "n_test", "gamma_ft", "pt_rescale"):
            c.pop(ft_only)
        if c["ft_split"] == "all":
            c.pop("heldout_frac")
        return {"config": c, "seed": self.seed, "optim": asdict(self.pt_optim)}

    def _model(self) -> ModularTransformer:
        c = self.config
        return ModularTransformer(c.p, c.width, c.n_layers, c.n_heads, c.p)

    def build_pt_model(self) -> nn.Module:
        c = self.config
        model = self._model()
        early, late = layer_scales(c.c_pt, c.lambda_pt)
        scale = {
            "embed_attn": early * c.scale_embed_attn,
            "mlp": early * c.scale_mlp,
            "head": late * c.scale_head,
        }
        gen = generator(self.seed, "modular-init")
        with torch.no_grad():
            for name, param in model.named_parameters():
                group = group_of(name)
                if group == "norm":
                    continue
                if name.endswith(".bias"):
                    param.zero_()
                    continue
                fan_in = 1 if name.startswith(("tok.", "pos.")) else param.shape[1]
                draw = torch.randn(param.shape, generator=gen) / math.sqrt(fan_in)
                param.copy_(draw * scale[group])
        return model.to(self.device)

    def head_names(self, model: nn.Module) -> list[str]:
        return ["head.weight"]

    def layer_groups(self, model: nn.Module) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for name, _ in model.named_parameters():
            groups.setdefault(group_of(name), []).append(name)
            if name.startswith("blocks."):
                layer = name.split(".")[1]
                groups.setdefault(f"{group_of(name)}_l{layer}", []).append(name)
        return groups

    def build_ft_model(self, pt_state: dict[str, torch.Tensor]) -> nn.Module:
        c = self.config
        model = self._model()
        model.load_state_dict(pt_state)
        gen = generator(self.seed, "modular-ft-head")
        with torch.no_grad():
            for name, param in model.named_parameters():
                if group_of(name) in ("embed_attn", "mlp"):
                    param.mul_(c.pt_rescale)
            std = c.gamma_ft / math.sqrt(c.width)
            model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen) * std)
        return model.to(self.device)

    def ft_eval(self, model: nn.Module) -> dict[str, float]:
        return {
            **super().ft_eval(model),
            "train_accuracy": self._accuracy(model, self.x_ft, self.y_ft),
            "n_test_pairs": float(len(self.y_test)),
        }

    def extra_metrics(self, pt_state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, Any]:
        return {}
