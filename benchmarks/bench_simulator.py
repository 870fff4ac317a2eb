"""Throughput of the batched diagonal-network simulator against per-network baselines.

Usage: ``.venv/bin/python benchmarks/bench_simulator.py [--device cuda] [--dtype float32]``

Every method is timed ``--repeat`` times and its best run is kept (the machine is shared).
Workload: ``m`` networks sharing one dataset (D=256, n=128), 2000 full-batch GD steps,
float64, early stopping disabled so every network runs every step.  Baselines, timed on a
subset and extrapolated per network-step:

(a) reference-style training, one network at a time: an ``nn.Module`` with the four
    pathway vectors as parameters, ``torch.optim.SGD`` on ``F.mse_loss``, and the per-step
    bookkeeping of the authors' training loop (``train()`` in
    ``experiments/diagonal/replica/diagonal_network_pretrain_bg.py`` of the first
    author's public code, THEORY.md): the gradient norm and the loss read back every
    step for the stopping and lr-tuning rules, and an evaluation at the first and last
    step and every 5000 steps, their Experiment 1 setting (train and test MSE, parameter
    MSE, invariant drift with quantiles, beta update rate, l1/l2 norms).  A
    re-implementation of that per-step work, not their code.  They run one network per
    process (a SLURM array task each), so every network of theirs also pays a cold
    start: the first run of (a) in a process is slower than later ones, and the table
    compares against the best run and shows the cold one too;
(a-min) the bare minimum of (a): raw tensors, zero_grad / mse_loss / backward / step and
    nothing else (no host syncs).  A lower bound for any autograd loop, shown so the
    ratio against (a) can be judged;
(b) a hand-written single-network loop with manual gradients (numpy and torch; the
    faster one is reported).

The batched simulator's GFLOP/s counts its two matrix products per step
(``2 * 2 n D m`` flops) and is compared with a plain ``torch.mm`` of the same shapes.
At this shape (D = 2n) ``gradient_form="auto"`` keeps the residual form; the Gram form
(one ``K = X^T X`` product, the same flops here) is timed too.
"""

from __future__ import annotations

import os

# Pin BLAS/OpenMP to one thread before torch/numpy load their runtimes.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.dln.simulate import (  # noqa: E402
    GDJob,
    GDOptions,
    PathwayWeights,
    resolve_device,
    run_gradient_descent,
)

LR = 0.5


def make_problem(
    D: int, n: int, m: int, seed: int = 0, dtype: str = "float64"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """One sparse teacher, x ~ N(0, I/D), and m PT-style inits with scales c in [1e-3, 1e-1].

    Every array comes in ``dtype``, so every method below computes in it.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)) / np.sqrt(D)
    beta = np.where(rng.random(D) < 0.1, rng.standard_normal(D) * np.sqrt(10.0), 0.0)
    y = X @ beta
    inits = []
    for c, lam in zip(10 ** rng.uniform(-3, -1, m), rng.uniform(-0.9, 0.9, m), strict=True):
        w = np.full(D, np.sqrt(c * (1 + lam) / 2))
        v = np.full(D, np.sqrt(c * (1 - lam) / 2))
        w, v = w.astype(dtype), v.astype(dtype)
        inits.append(PathwayWeights(w, v, w.copy(), v.copy()))
    return X.astype(dtype), y.astype(dtype), beta.astype(dtype), inits


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_batched(X, y, inits, steps: int, device: torch.device, form: str = "auto") -> float:
    jobs = [GDJob(X=X, y=y, init=init) for init in inits]
    options = GDOptions(
        lr=LR,
        max_steps=steps,
        early_stopping=False,
        device=str(device),
        gradient_form=form,
        dtype=str(X.dtype),
    )
    start = time.perf_counter()
    results = run_gradient_descent(jobs, options)
    elapsed = time.perf_counter() - start
    assert all(r.steps == steps for r in results)
    assert not any(r.diverged for r in results), "benchmark configuration diverged"
    return elapsed


def bench_minimal_autograd(X, y, inits, steps: int, device: torch.device) -> float:
    """(a-min): autograd + SGD + F.mse_loss and nothing else; seconds per network-step."""
    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    sync(device)
    start = time.perf_counter()
    for init in inits:
        params = [
            torch.tensor(a, device=device, requires_grad=True)
            for a in (init.w_plus, init.v_plus, init.w_minus, init.v_minus)
        ]
        optimizer = torch.optim.SGD(params, lr=LR)
        wp, vp, wm, vm = params
        for _ in range(steps):
            optimizer.zero_grad()
            loss = F.mse_loss(Xt @ (wp * vp - wm * vm), yt)
            loss.backward()
            optimizer.step()
    sync(device)
    return (time.perf_counter() - start) / (len(inits) * steps)


class _PathwayNet(torch.nn.Module):
    """Diagonal network f(x) = x . (w+ v+ - w- v-) with the four vectors as parameters."""

    def __init__(self, init: PathwayWeights, device: torch.device) -> None:
        super().__init__()
        self.w_plus, self.v_plus, self.w_minus, self.v_minus = (
            torch.nn.Parameter(torch.tensor(a, device=device))
            for a in (init.w_plus, init.v_plus, init.w_minus, init.v_minus)
        )

    def beta(self) -> torch.Tensor:
        return self.w_plus * self.v_plus - self.w_minus * self.v_minus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.beta()


def bench_reference_style(
    X, y, beta_star, inits, steps: int, device: torch.device, eval_every: int = 5000
) -> float:
    """(a): the authors' per-step work (module docstring); seconds per network-step."""
    Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    rng = np.random.default_rng(1)
    X_test = rng.standard_normal(X.shape) / np.sqrt(X.shape[1])
    X_test = torch.as_tensor(X_test.astype(X.dtype), device=device)
    bstar = torch.as_tensor(beta_star, device=device)
    y_test = X_test @ bstar
    threshold = 0.0  # every network runs every step, as in the batched run
    sync(device)
    start = time.perf_counter()
    for init in inits:
        model = _PathwayNet(init, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        with torch.no_grad():
            delta_plus0 = model.w_plus**2 - model.v_plus**2
            s0 = model.w_plus * model.w_minus + model.v_plus * model.v_minus
        beta_prev = None
        history = []
        for step in range(steps):
            optimizer.zero_grad()
            loss = F.mse_loss(model(Xt), yt)
            loss.backward()
            grad_norm = torch.sqrt(sum(p.grad.norm() ** 2 for p in model.parameters())).item()
            optimizer.step()
            loss_value = loss.item()
            if step % eval_every == 0 or step == steps - 1:
                with torch.no_grad():
                    beta = model.beta()
                    drift_delta = (model.w_plus**2 - model.v_plus**2 - delta_plus0).abs()
                    drift_s = (
                        model.w_plus * model.w_minus + model.v_plus * model.v_minus - s0
                    ).abs()
                    rate = (
                        ((beta - beta_prev).norm() / (beta_prev.norm() + 1e-12)).item()
                        if beta_prev is not None
                        else float("inf")
                    )
                    beta_prev = beta.clone()
                    history.append(
                        {
                            "train_mse": F.mse_loss(model(Xt), yt).item(),
                            "test_mse": F.mse_loss(model(X_test), y_test).item(),
                            "param_mse": F.mse_loss(beta, bstar).item(),
                            "grad_norm": grad_norm,
                            "beta_rate": rate,
                            "l1": beta.abs().sum().item(),
                            "l2": beta.norm().item(),
                            "delta_max": drift_delta.max().item(),
                            "delta_p95": torch.quantile(drift_delta, 0.95).item(),
                            "s_max": drift_s.max().item(),
                            "s_p95": torch.quantile(drift_s, 0.95).item(),
                        }
                    )
            if loss_value < threshold or loss_value > 100 or math.isnan(loss_value):
                break
    sync(device)
    return (time.perf_counter() - start) / (len(inits) * steps)


def bench_manual_numpy(X, y, inits, steps: int) -> float:
    n = X.shape[0]
    Xt = np.ascontiguousarray(X.T)
    start = time.perf_counter()
    for init in inits:
        wp, vp = init.w_plus.copy(), init.v_plus.copy()
        wm, vm = init.w_minus.copy(), init.v_minus.copy()
        for _ in range(steps):
            g = (2.0 * LR / n) * (Xt @ (X @ (wp * vp - wm * vm) - y))
            wp, vp = wp - g * vp, vp - g * wp
            wm, vm = wm + g * vm, vm + g * wm
    return (time.perf_counter() - start) / (len(inits) * steps)


def bench_manual_torch(X, y, inits, steps: int, device: torch.device) -> float:
    n = X.shape[0]
    Xd = torch.as_tensor(X, device=device)
    Xt = Xd.t().contiguous()
    yd = torch.as_tensor(y, device=device)
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for init in inits:
            wp, vp, wm, vm = (
                torch.tensor(a, device=device)
                for a in (init.w_plus, init.v_plus, init.w_minus, init.v_minus)
            )
            for _ in range(steps):
                g = (2.0 * LR / n) * (Xt @ (Xd @ (wp * vp - wm * vm) - yd))
                wp, vp = wp - g * vp, vp - g * wp
                wm, vm = wm + g * vm, vm + g * wm
    sync(device)
    return (time.perf_counter() - start) / (len(inits) * steps)


def bench_matmul(
    D: int, n: int, m: int, steps: int, device: torch.device, dtype: torch.dtype
) -> float:
    """Seconds for ``steps`` pairs (X @ B, X^T @ R) of the simulator's shapes."""
    X = torch.randn(n, D, dtype=dtype, device=device)
    Xt = X.t().contiguous()
    B = torch.randn(D, m, dtype=dtype, device=device)
    R = torch.empty(n, m, dtype=dtype, device=device)
    G = torch.empty(D, m, dtype=dtype, device=device)
    for _ in range(3):
        torch.mm(X, B, out=R)
        torch.mm(Xt, R, out=G)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        torch.mm(X, B, out=R)
        torch.mm(Xt, R, out=G)
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--networks", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--D", type=int, default=256)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--subset", type=int, default=16)
    parser.add_argument("--subset-steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--dtype",
        default="float64",
        choices=("float64", "float32"),
        help="precision of every method (the issue's benchmark is float64)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    D, n, m, steps = args.D, args.n, args.networks, args.steps

    X, y, beta_star, inits = make_problem(D, n, m, dtype=args.dtype)
    sub = inits[: args.subset]
    sub_steps = args.subset_steps
    bench_batched(X, y, inits[:8], 20, device)  # warm-up
    # Best of `repeat` runs for every method alike: the machine is shared.
    best = range(args.repeat)
    batched = min(bench_batched(X, y, inits, steps, device) for _ in best)
    gram = min(bench_batched(X, y, inits, steps, device, "gram") for _ in best)
    ref_runs = [bench_reference_style(X, y, beta_star, sub, sub_steps, device) for _ in best]
    ref = min(ref_runs)
    minimal = min(bench_minimal_autograd(X, y, sub, sub_steps, device) for _ in best)
    manual_np = min(bench_manual_numpy(X, y, sub, sub_steps) for _ in best)
    manual_torch = min(bench_manual_torch(X, y, sub, sub_steps, device) for _ in best)
    manual, manual_name = min((manual_np, "numpy"), (manual_torch, "torch"))
    torch_dtype = torch.float64 if args.dtype == "float64" else torch.float32
    matmul = min(bench_matmul(D, n, m, steps, device, torch_dtype) for _ in best)

    net_steps = m * steps
    flops = 2 * 2 * n * D * m * steps
    rate = net_steps / batched
    print(
        f"device={device} threads={torch.get_num_threads()} D={D} n={n} m={m} steps={steps} "
        f"{args.dtype}, best of {args.repeat}"
    )
    print(f"{'method':<48}{'net-steps/s':>14}{'batched is':>14}")
    rows = [
        ("batched simulator", rate),
        ("batched simulator, Gram form forced", net_steps / gram),
        ("(a) reference-style loop, 1 by 1", 1.0 / ref),
        ("(a) same, first (cold) run only", 1.0 / ref_runs[0]),
        ("(a-min) bare autograd + SGD + mse_loss, 1 by 1", 1.0 / minimal),
        (f"(b) manual gradients ({manual_name}), 1 by 1", 1.0 / manual),
    ]
    for name, value in rows:
        print(f"{name:<48}{value:>14.3g}{rate / value:>13.1f}x")
    achieved, peak = flops / batched / 1e9, flops / matmul / 1e9
    print(f"batched simulator matmul GFLOP/s: {achieved:.1f}")
    print(f"plain torch.mm, same shapes GFLOP/s: {peak:.1f}  ({100 * achieved / peak:.0f}% of it)")
    # No batched code can beat the matmul: this bounds the ratio against (a).
    bound = peak * 1e9 / (4 * n * D)
    print(
        f"matmul-bound ceiling: {bound:.3g} net-steps/s = {bound * ref:.0f}x (a), "
        f"{bound * minimal:.0f}x (a-min)"
    )


if __name__ == "__main__":
    main()
