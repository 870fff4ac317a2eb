"""Init-scale knobs, weight-change measures and the empirical regime label of the
nonlinear workloads (THEORY.md §5, last paragraph; §4 for the regime vocabulary).

Knobs, shared by every network so the typed result columns mean the same thing:

- ``c_pt`` (absolute scale) and ``lambda_pt`` (relative scale, the normalized λ of
  THEORY.md §1, in (−1, 1)) set the init of the *earlier* layers (everything but the
  head) and of the *later* layer (the head) as multiples of the standard init:

      s_early = sqrt(c_pt (1 + λ)),   s_late = sqrt(c_pt (1 − λ))

  so ``c_pt = 1, λ = 0`` is the standard init, ``s_early / s_late = sqrt((1+λ)/(1−λ))``
  (λ < 0: smaller earlier layers), and ``s_early · s_late = c_pt sqrt(1 − λ²)`` — the
  diagonal network's w = sqrt(c(1+λ)/2), v = sqrt(c(1−λ)/2) up to the factor 2.
- ``pt_rescale``: after pretraining, the earlier layers are multiplied by this factor
  (the predecessor paper's post-PT rescaling, {0.125, …, 2}).
- ``gamma_ft``: at fine-tuning the head is re-initialized to ``gamma_ft`` times its
  standard init (``gamma_ft = 0``: a zero head, the analogue of β_FT(0) = 0).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from workers.nets.training import OptimConfig, batches
from workers.theory.regimes import CLASSIFIER_V1, classify

EMPIRICAL_CLASSIFIER_VERSION = "nets-emp-1"
# Relative weight change at which a phase counts as halfway between lazy and rich.
MOVEMENT_REF = 0.1


def layer_scales(c_pt: float, lambda_pt: float) -> tuple[float, float]:
    """(s_early, s_late) multiplying the standard init (module docstring)."""
    if not c_pt > 0 or not -1 < lambda_pt < 1:
        raise ValueError(f"need c_pt > 0 and -1 < lambda_pt < 1, got {c_pt}, {lambda_pt}")
    return math.sqrt(c_pt * (1 + lambda_pt)), math.sqrt(c_pt * (1 - lambda_pt))


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed per named random stream of one trial."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator: the same draws on every device (tensors move afterwards)."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def canonical_key(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot(model: torch.nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Detached float32 CPU copies of the named parameters."""
    wanted = set(names)
    return {
        name: param.detach().float().cpu().clone()
        for name, param in model.named_parameters()
        if name in wanted
    }


def _norm(tensors: Iterable[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def relative_change(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], names: Iterable[str]
) -> float | None:
    """‖θ_after − θ_before‖ / ‖θ_before‖ over the named tensors (None if ‖θ_before‖ = 0)."""
    names = [name for name in names if name in before]
    base = _norm(before[name] for name in names)
    if base == 0.0:
        return None
    return _norm(after[name] - before[name] for name in names) / base


def cosine(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], names: Iterable[str]
) -> float | None:
    """Cosine similarity of the two flattened parameter vectors (None if one is zero)."""
    names = [name for name in names if name in before]
    dot = sum(float((before[n].double() * after[n].double()).sum()) for n in names)
    scale = _norm(before[n] for n in names) * _norm(after[n] for n in names)
    return None if scale == 0.0 else dot / scale


def group_changes(
    before: Mapping[str, torch.Tensor],
    after: Mapping[str, torch.Tensor],
    groups: Mapping[str, list[str]],
) -> dict[str, float | None]:
    """Relative weight change per named layer group."""
    return {group: relative_change(before, after, names) for group, names in groups.items()}


@dataclass(frozen=True)
class EmpiricalRegime:
    label: str
    l_order: float
    pd: float


def empirical_regime(
    ft_movement: float | None, pt_movement: float | None, retained: float | None
) -> EmpiricalRegime | None:
    """The four-regime label of a fine-tuned network from measured weight changes.

    The diagonal network's diagnostics (THEORY.md §4) have no closed form here, so they
    are replaced by measured stand-ins on the same scales and classified with the
    ``regimes-v1`` thresholds (``workers.theory.regimes.classify_v1``; the version
    ``nets-emp-1`` names this pairing):

    - ℓ (1 rich … 2 lazy) from how far the earlier layers move during fine-tuning,
      m_FT = ‖Δθ_early‖/‖θ_early(FT start)‖:  ℓ = 1 + 1/(1 + m_FT/m_ref);
    - PD (−1 dependent … 0 independent) = −(what pretraining put into the earlier layers)
      × (how much of it fine-tuning keeps):  PD = −[m_PT/(m_PT + m_ref)] · max(0, cos),
      m_PT = ‖θ_early(PT end) − θ_early(init)‖/‖θ_early(init)‖ and cos the cosine of
      θ_early at the end of FT with θ_early at its start.

    m_ref = ``MOVEMENT_REF`` = 0.1.  Lazy FT on features PT learned → II; lazy FT on
    features PT barely changed (large c_pt: PT itself was lazy) → III; FT that rewrites
    the earlier layers → I; in between → IV.
    """
    if ft_movement is None or pt_movement is None or retained is None:
        return None
    if not all(math.isfinite(v) for v in (ft_movement, pt_movement, retained)):
        return None
    ell = 1.0 + 1.0 / (1.0 + ft_movement / MOVEMENT_REF)
    learned = pt_movement / (pt_movement + MOVEMENT_REF)
    pd = -learned * max(0.0, retained)
    return EmpiricalRegime(classify(ell, pd, CLASSIFIER_V1), ell, pd)


class CrossEntropyProblem:
    """Shared loss, accuracy and PT/FT steps of the classification problems.

    A subclass sets ``seed, pt_optim, ft_optim`` and the tensors ``x_pt, y_pt, x_ft, y_ft,
    x_test, y_test``, then calls :meth:`_set_batches`; ``ft_eval`` here reports the
    metrics both classification workloads share (subclasses add their own).
    """

    seed: int
    pt_optim: OptimConfig
    ft_optim: OptimConfig
    x_pt: torch.Tensor
    y_pt: torch.Tensor
    x_ft: torch.Tensor
    y_ft: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def _set_batches(self, stream: str) -> None:
        """Sample counts and the seeded mini-batch index functions of both phases
        (generator streams ``<stream>-pt-batches`` and ``<stream>-ft-batches``)."""
        self.pt_samples, self.ft_samples = len(self.y_pt), len(self.y_ft)
        self._pt_batch = batches(
            self.pt_samples, self.pt_optim.batch_size, generator(self.seed, f"{stream}-pt-batches")
        )
        self._ft_batch = batches(
            self.ft_samples, self.ft_optim.batch_size, generator(self.seed, f"{stream}-ft-batches")
        )

    @staticmethod
    def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # float(): the logits may be bf16 under autocast; the loss is taken in fp32.
        return torch.nn.functional.cross_entropy(model(x).float(), y)

    @staticmethod
    def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((model(x).argmax(dim=-1) == y).float().mean())

    def pt_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor:
        index = self._pt_batch(step)
        return self._loss(model, self.x_pt[index], self.y_pt[index])

    def pt_eval(self, model: torch.nn.Module) -> dict[str, float]:
        return {
            "train_loss": float(self._loss(model, self.x_pt, self.y_pt)),
            "train_accuracy": self._accuracy(model, self.x_pt, self.y_pt),
        }

    def ft_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor:
        index = self._ft_batch(step)
        return self._loss(model, self.x_ft[index], self.y_ft[index])

    def ft_eval(self, model: torch.nn.Module) -> dict[str, float]:
        return {
            "test_loss": float(self._loss(model, self.x_test, self.y_test)),
            "test_accuracy": self._accuracy(model, self.x_test, self.y_test),
            "train_loss": float(self._loss(model, self.x_ft, self.y_ft)),
        }
