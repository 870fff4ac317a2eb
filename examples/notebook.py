# %% [markdown]
# # Exp 1 from Python: simulation against theory, in a DataFrame
#
# The paper's Exp 1 (THEORY.md §5, "benefit from existing features"): the baseline
# ω = 0.5, c_PT = 1e-3, λ_PT = 0, γ_FT = 0 and one knob varied at a time.  This notebook
# submits the theory curves and the simulation through the Python client, waits with a
# progress line, pulls both into pandas, plots the simulation (mean ± 1.96 SEM over seeds)
# against the replica theory, and queries the results by fine-tuning regime.
#
# Run it as a script against a running server (`sweeps serve`; SWEEPS_URL, default
# http://127.0.0.1:8000), or cell by cell in an editor that knows `# %%`:
#
#     python examples/notebook.py --size tiny            # 3 settings, D = 50: seconds
#     python examples/notebook.py --size small           # 10 settings, D = 200: a minute
#     python examples/notebook.py                        # the reduced Exp 1: ~6 minutes
#
# The size also comes from SWEEPS_EXAMPLE_SIZE; the figure goes to --out.

# %%
from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")  # a file, not a window: runs the same in CI and on a laptop
import matplotlib.pyplot as plt  # noqa: E402

from finetune_sweeps import Client  # noqa: E402

HERE = Path(__file__).resolve().parent
SETTING = ["omega", "c_pt", "lambda_pt", "gamma_ft"]  # what Exp 1 varies, one at a time

parser = argparse.ArgumentParser(description="Exp 1 from Python (see the file's first cell)")
parser.add_argument(
    "--size",
    choices=("tiny", "small", "reduced"),
    default=os.environ.get("SWEEPS_EXAMPLE_SIZE", "reduced"),
)
parser.add_argument("--out", type=Path, default=Path("docs/figures/notebook_exp1.png"))
parser.add_argument("--url", default=None, help="default SWEEPS_URL or http://127.0.0.1:8000")
args, _ = parser.parse_known_args()  # tolerate the kernel's own arguments in a notebook


# %% [markdown]
# ## The two specs, at the size asked for
#
# `examples/paper/exp1.yaml` (simulation) and `exp1_theory.yaml` (replica curves) are the
# reduced paper specs.  Smaller sizes keep their structure and shrink D, seeds, α points
# and (for `tiny`) the number of settings.


# %%
def shrink(simulation: dict, theory: dict, size: str) -> tuple[dict, dict]:
    """The Exp 1 specs at ``size``; ``reduced`` returns them unchanged."""
    simulation, theory = copy.deepcopy(simulation), copy.deepcopy(theory)
    if size == "reduced":
        return simulation, theory
    settings = 3 if size == "tiny" else 10  # tiny: the baseline and ω = 0, 1
    for spec in (simulation, theory):
        spec["zip"] = [{name: values[:settings] for name, values in spec["zip"][0].items()}]
        spec["name"] = f"{spec['name']}-{size}"
    simulation["params"]["D"] = 50 if size == "tiny" else 200
    simulation["params"]["n_test"] = 100
    simulation["seeds"] = 3 if size == "tiny" else 4
    simulation["axes"]["alpha"] = [0.2, 0.3] if size == "tiny" else [0.1, 0.2, 0.3]
    # Fewer samples than at D = 1000 make the lazy γ_FT = 10 readout unstable at lr 0.5.
    simulation["execution"]["lr"] = 0.25
    theory["axes"]["alpha"] = {"kind": "linspace", "start": 0.05, "stop": 0.4, "num": 8}
    return simulation, theory


base_sim = yaml.safe_load((HERE / "paper" / "exp1.yaml").read_text())
base_theory = yaml.safe_load((HERE / "paper" / "exp1_theory.yaml").read_text())
sim_spec, theory_spec = shrink(base_sim, base_theory, args.size)
client = Client(args.url)
plan = client.plan(sim_spec)
print(f"size {args.size}: {plan.trial_count} simulated networks ({plan.cached_count} cached)")

# %% [markdown]
# ## Submit and wait
#
# Theory first (seconds): the simulation then finds its replica values stored.
# `progress=True` prints one line that updates in place (a plain final line in a log).

# %%
theory = client.submit(theory_spec, wait=True, progress=True)
simulation = client.submit(sim_spec, wait=True, progress=True)
print(f"theory {theory.id}: {theory.status}; simulation {simulation.id}: {simulation.status}")
assert theory.status == simulation.status == "succeeded", "a sweep did not succeed"

# %% [markdown]
# ## Into pandas
#
# `results()` follows every page of the keyset cursor; `to_pandas()` gives float columns
# for every parameter and error, and categorical regime columns.

# %%
sim = client.results(sweep_id=simulation.id).to_pandas()
curves = client.results(sweep_id=theory.id).to_pandas()
print(sim[[*SETTING, "alpha", "seed", "gen_error_sim", "gen_error_asymptotic", "regime_theory"]])
print(sim.dtypes[["alpha", "gen_error_sim", "regime_theory"]].to_string())

converged = sim[~sim["diverged"].fillna(False).astype(bool)]  # a NaN run is a result, not a point
print(f"{len(sim) - len(converged)} of {len(sim)} runs diverged")
points = (
    converged.groupby([*SETTING, "alpha"], observed=True)["gen_error_sim"]
    .agg(["mean", "sem", "count"])
    .reset_index()
)

# %% [markdown]
# ## Simulation against theory
#
# One panel per setting: the replica E_gen(α) as a line, the simulated mean ± 1.96 SEM
# over seeds as points.

# %%
settings = points[SETTING].drop_duplicates().reset_index(drop=True)
columns = min(len(settings), 5)
rows = -(-len(settings) // columns)
figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)


def rows_of(frame, setting):
    """The rows of ``frame`` at one Exp 1 setting (ω, c_PT, λ_PT, γ_FT)."""
    return frame[(frame[SETTING] == setting.values).all(axis=1)]


for ax, (_, setting) in zip(axes.flat, settings.iterrows(), strict=False):
    line = rows_of(curves, setting).sort_values("alpha")
    dots = rows_of(points, setting)
    ax.plot(line["alpha"], line["gen_error_asymptotic"], color="black", lw=1.2, label="theory")
    ax.errorbar(
        dots["alpha"],
        dots["mean"],
        yerr=1.96 * dots["sem"].fillna(0),
        fmt="o",
        ms=4,
        capsize=2,
        label="simulation",
    )
    ax.set_yscale("log")
    symbols = {"omega": "ω", "c_pt": "c", "lambda_pt": "λ", "gamma_ft": "γ"}
    ax.set_title(" ".join(f"{symbols[k]}={v:g}" for k, v in setting.items()), fontsize=9)
    ax.set_xlabel("α")
for ax in list(axes.flat)[len(settings) :]:
    ax.set_visible(False)
axes.flat[0].set_ylabel("E_gen")
axes.flat[0].legend(fontsize=7)
figure.tight_layout()
args.out.parent.mkdir(parents=True, exist_ok=True)
figure.savefig(args.out, dpi=120)
print(f"wrote {args.out}")

# %% [markdown]
# ## Query by regime
#
# The regime (THEORY.md §4) is an indexed column: the server filters on it, and the
# DataFrame groups on it.  Here: how many runs fall in each theory regime, how often the
# trained network's measured regime agrees, and the nested-feature-selection runs (IV)
# alone, straight from the server.

# %%
sim["label_agrees"] = sim["regime_empirical"].astype(str) == sim["regime_theory"].astype(str)
by_regime = sim.groupby("regime_theory", observed=True).agg(
    runs=("trial_id", "size"),
    mean_error=("gen_error_sim", "mean"),
    label_agrees=("label_agrees", "mean"),
)
print(by_regime)
nested = client.results(sweep_id=simulation.id, regime_theory="IV").to_pandas()
print(f"{len(nested)} runs in regime IV (server-side filter regime_theory=IV)")
lazy_or_nested = client.results(sweep_id=simulation.id, regime_theory=["II", "IV"], alpha_ge=0.2)
print(f"{len(lazy_or_nested)} runs in regimes II or IV with α ≥ 0.2")
report = client.report(simulation.id, worst=3)
print(
    f"theory inside the simulation's 95% interval: {report.inside_95}/{report.compared} "
    f"compared configs"
)
client.close()
