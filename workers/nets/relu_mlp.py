"""ReLU student networks on teacher tasks (the predecessor paper's setting, THEORY.md §5).

Inputs x ~ N(0, I_D).  A teacher is y = (1/√K) Σ_k a_k relu(u_k·x) + σ0 ξ with unit
vectors u_k and signs a_k = ±1.  The PT teacher has ``k_pt`` random units; the FT
teacher has ``k_ft`` units chosen by ``ft_task``:

- ``subset``: the first ``k_ft`` PT units (fresh signs) — reuse of a subset of features;
- ``correlated``: u'_k = q u_k + sqrt(1 − q²) r_k, r_k a random unit vector orthogonal
  to u_k (k < k_ft, fresh signs) — cosine ``q`` with the PT units;
- ``new``: ``k_ft`` fresh random units.

Student: ``depth`` hidden ReLU layers of ``width`` units, no biases, a linear readout
(the head).  Standard init: W₁ ~ N(0, 1/D), deeper hidden layers N(0, 2/width) (He),
head N(0, 1/width); the knobs of ``workers.nets.common`` multiply them.  Loss: mean
squared error.  The FT test loss is the MSE on ``n_test`` fresh samples of the FT
teacher.  Alignment metrics compare first-layer units (directions in input space).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from workers.nets.common import generator, layer_scales
from workers.nets.training import OptimConfig, batches

FT_TASKS = ("subset", "correlated", "new")


@dataclass(frozen=True)
class ReluConfig:
    D: int = 20
    width: int = 50
    depth: int = 1
    k_pt: int = 4
    k_ft: int = 2
    ft_task: str = "subset"
    q: float = 0.5
    n_pt: int = 500
    n_ft: int = 50
    n_test: int = 1000
    sigma0: float = 0.0
    c_pt: float = 1.0
    lambda_pt: float = 0.0
    gamma_ft: float = 1.0
    pt_rescale: float = 1.0


class ReluMLP(nn.Module):
    def __init__(self, D: int, width: int, depth: int) -> None:
        super().__init__()
        sizes = [D] + [width] * depth
        self.hidden = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.head = nn.Linear(width, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.head(x).squeeze(-1)


def _unit_rows(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def make_teachers(
    config: ReluConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U_pt, a_pt, U_ft, a_ft): unit teacher directions (rows) and ±1 signs."""
    if config.ft_task not in FT_TASKS:
        raise ValueError(f"ft_task must be one of {FT_TASKS}, got {config.ft_task!r}")
    gen = generator(seed, "relu-teachers")
    u_pt = _unit_rows(torch.randn(config.k_pt, config.D, generator=gen))
    a_pt = torch.randint(0, 2, (config.k_pt,), generator=gen).float() * 2 - 1
    a_ft = torch.randint(0, 2, (config.k_ft,), generator=gen).float() * 2 - 1
    fresh = _unit_rows(torch.randn(config.k_ft, config.D, generator=gen))
    if config.ft_task == "new":
        return u_pt, a_pt, fresh, a_ft
    if config.k_ft > config.k_pt:
        raise ValueError(f"ft_task={config.ft_task} needs k_ft <= k_pt")
    base = u_pt[: config.k_ft]
    if config.ft_task == "subset":
        return u_pt, a_pt, base.clone(), a_ft
    orthogonal = _unit_rows(fresh - (fresh * base).sum(1, keepdim=True) * base)
    u_ft = config.q * base + math.sqrt(max(0.0, 1 - config.q**2)) * orthogonal
    return u_pt, a_pt, _unit_rows(u_ft), a_ft


def teacher_output(x: torch.Tensor, units: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    return torch.relu(x @ units.T) @ signs / math.sqrt(units.shape[0])


class ReluProblem:
    workload = "relu_finetune"
    version = "relu-finetune-1"
    config_class = ReluConfig
    # Config fields filled from the deployment context rather than the trial's params.
    context_fields: dict[str, str] = {}

    def __init__(
        self,
        config: ReluConfig,
        seed: int,
        pt_optim: OptimConfig,
        ft_optim: OptimConfig,
        *,
        device: str = "cpu",
        amp: bool = False,
    ) -> None:
        self.config, self.seed = config, seed
        self.pt_optim, self.ft_optim = pt_optim, ft_optim
        self.device, self.amp = device, amp
        self.pt_samples, self.ft_samples = config.n_pt, config.n_ft
        c = config
        self.u_pt, self.a_pt, self.u_ft, self.a_ft = make_teachers(c, seed)
        gen = generator(seed, "relu-data")

        def sample(n: int, units: torch.Tensor, signs: torch.Tensor, noise: float):
            x = torch.randn(n, c.D, generator=gen)
            y = teacher_output(x, units, signs) + noise * torch.randn(n, generator=gen)
            return x.to(device), y.to(device)

        self.x_pt, self.y_pt = sample(c.n_pt, self.u_pt, self.a_pt, 0.0)
        self.x_ft, self.y_ft = sample(c.n_ft, self.u_ft, self.a_ft, c.sigma0)
        self.x_test, self.y_test = sample(c.n_test, self.u_ft, self.a_ft, 0.0)
        self._pt_batch = batches(c.n_pt, pt_optim.batch_size, generator(seed, "relu-pt-batches"))
        self._ft_batch = batches(c.n_ft, ft_optim.batch_size, generator(seed, "relu-ft-batches"))

    # -- pretraining -------------------------------------------------------------
    def pretrain_config(self) -> dict[str, Any]:
        c = asdict(self.config)
        for ft_only in ("k_ft", "ft_task", "q", "n_ft", "n_test", "sigma0", "gamma_ft"):
            c.pop(ft_only)
        c.pop("pt_rescale")
        return {"config": c, "seed": self.seed, "optim": asdict(self.pt_optim)}

    def build_pt_model(self) -> nn.Module:
        c = self.config
        model = ReluMLP(c.D, c.width, c.depth)
        early, late = layer_scales(c.c_pt, c.lambda_pt)
        gen = generator(self.seed, "relu-init")
        with torch.no_grad():
            for index, layer in enumerate(model.hidden):
                gain = 1.0 if index == 0 else 2.0
                std = early * math.sqrt(gain / layer.in_features)
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * std)
            std = late / math.sqrt(c.width)
            model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen) * std)
        return model.to(self.device)

    def head_names(self, model: nn.Module) -> list[str]:
        return ["head.weight"]

    def layer_groups(self, model: nn.Module) -> dict[str, list[str]]:
        groups = {f"layer{i + 1}": [f"hidden.{i}.weight"] for i in range(self.config.depth)}
        groups["head"] = ["head.weight"]
        return groups

    def pt_loss(self, model: nn.Module, step: int) -> torch.Tensor:
        index = self._pt_batch(step)
        return (model(self.x_pt[index]).float() - self.y_pt[index]).pow(2).mean()

    def pt_eval(self, model: nn.Module) -> dict[str, float]:
        return {"train_loss": float((model(self.x_pt).float() - self.y_pt).pow(2).mean())}

    # -- fine-tuning ---------------------------------------------------------------
    def build_ft_model(self, pt_state: dict[str, torch.Tensor]) -> nn.Module:
        c = self.config
        model = ReluMLP(c.D, c.width, c.depth)
        model.load_state_dict(pt_state)
        gen = generator(self.seed, "relu-ft-head")
        with torch.no_grad():
            for layer in model.hidden:
                layer.weight.mul_(c.pt_rescale)
            std = c.gamma_ft / math.sqrt(c.width)
            model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen) * std)
        return model.to(self.device)

    def ft_loss(self, model: nn.Module, step: int) -> torch.Tensor:
        index = self._ft_batch(step)
        return (model(self.x_ft[index]).float() - self.y_ft[index]).pow(2).mean()

    def ft_eval(self, model: nn.Module) -> dict[str, float]:
        test = float((model(self.x_test).float() - self.y_test).pow(2).mean())
        train = float((model(self.x_ft).float() - self.y_ft).pow(2).mean())
        baseline = float(self.y_test.pow(2).mean())
        return {"test_loss": test, "train_loss": train, "zero_predictor_loss": baseline}

    def extra_metrics(self, pt_state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, Any]:
        """Alignment of FT first-layer units with the PT units (cosines in input space).

        - ``unit_alignment_pt``: per unit, cos(w_i at the end of FT, w_i at the end of
          PT), averaged with weights |head_i| (how much each used unit kept its PT
          direction);
        - ``teacher_coverage_pt`` / ``teacher_coverage_ft``: for each PT / FT teacher
          unit, the best cosine with any FT student unit, averaged.
        """
        w_ft = model.hidden[0].weight.detach().float().cpu()
        w_pt = pt_state["hidden.0.weight"].float()
        head = model.head.weight.detach().float().cpu().abs().squeeze(0)
        cos = nn.functional.cosine_similarity(w_ft, w_pt, dim=1, eps=1e-12)
        total = float(head.sum())
        weight = head / total if total > 0 else torch.full_like(head, 1 / len(head))
        units = _unit_rows(w_ft)
        return {
            "unit_alignment_pt": float((cos * weight).sum()),
            "teacher_coverage_pt": float((self.u_pt @ units.T).max(dim=1).values.mean()),
            "teacher_coverage_ft": float((self.u_ft @ units.T).max(dim=1).values.mean()),
        }
