"""The recipes: each key figure of the two papers as experiment files plus a drawing function.

A recipe's experiments are ordinary TOML experiment files (see ``examples/``), generated at one
of two sizes: ``small`` (2 cores, a minute or less) or ``full`` (the papers' sizes: larger d, more
seeds, finer grids). They run through :func:`twolayer.experiments.run_experiment`, so every
point is stored under its content hash and a rerun, or the other size, reuses what it can.
The TOML text is kept in each result's attributes: any figure can be rerun or varied by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import xarray as xr

from twolayer.plotting import recipes as figures

CUI = "Cui et al. 2024, arXiv 2402.04980"
ARNABOLDI = "Arnaboldi et al. 2023, arXiv 2302.05882"


@dataclass(frozen=True)
class Recipe:
    """One figure: its experiments (name → TOML text, by size) and how to draw them."""

    name: str
    paper: str
    title: str
    what: str  # one line: what the figure shows and what to look for
    sizes: dict[str, dict]  # "small" / "full" → template values
    templates: dict[str, str]  # experiment name → TOML template (str.format with the sizes)
    draw: Callable[[dict[str, xr.Dataset], dict], object]  # (results, size values) → Figure
    gallery: str = "small"  # the size whose figure the documentation shows

    def experiments(self, size: str) -> dict[str, str]:
        """Experiment name → TOML text at ``size`` ("small" or "full")."""
        values = self.sizes[size]
        return {name: text.format(**values) for name, text in self.templates.items()}


# ---------------------------------------------------------------- one giant step (Cui et al.)
_ONESTEP_HEAD = '''model = "onestep"
method = "{method}"
description = "{description}"
output = "{output}.nc"
store = "../store"

[params]
student = "tanh"
teacher = "tanh"
lam = 0.01
noise = 0.0
'''

ONESTEP_CURVES = Recipe(
    name="onestep-curves",
    paper=CUI,
    title="Learning curves after one giant step, several η̃, against random features",
    what="test error vs α = n/d for η̃ = 0 (RF), 0.5, 1, 2 at α0 = 0.5: d = ∞ theory (lines) "
         "and simulations (mean ± std over seeds); moderate steps (η̃ = 0.5, 1) beat RF at every "
         "α; a large step with few samples (η̃ = 2, α0 = 0.5) beats RF only for α ≲ 1 in theory "
         "and loses above. The figure prints, per η̃, how far the simulations sit from the theory "
         "(at η̃ = 2 up to 13–15% above it at d = 300–400, and the excess does not shrink "
         "with d: the step's noise is not the independent bulk the spiked-RF model assumes)",
    sizes={
        "small": {"n_alpha": 40, "sim_alpha": "[0.4, 1.0, 2.0, 3.0]", "d": 300, "seeds": 5},
        "full": {"n_alpha": 60, "sim_alpha": "[0.2, 0.6, 1.0, 1.6, 2.0, 2.5, 3.0]", "d": 2000,
                 "seeds": 8},
    },
    templates={
        "theory": _ONESTEP_HEAD.format(method="theory", output="theory",
                                       description="d = ∞ sRF theory, one curve per eta")
        + 'alpha0 = 0.5\nalpha = {{linspace = [0.2, 3.0, {n_alpha}]}}\nd = "inf"\n\n'
          '[sweep]\neta = [0.0, 0.5, 1.0, 2.0]\n',
        "simulation": _ONESTEP_HEAD.format(method="simulate", output="simulation",
                                           description="the network itself, one run per seed")
        + "alpha0 = 0.5\nalpha = {sim_alpha}\nd = {d}\nseeds = {seeds}\n\n"
          "[sweep]\neta = [0.0, 0.5, 1.0, 2.0]\n",
    },
    draw=figures.onestep_curves,
)

ONESTEP_ALIGNMENT = Recipe(
    name="onestep-alignment",
    paper=CUI,
    title="The spike's alignment with the target against α0",
    what="overlap γ = |v·θ| of the step's spike direction with the teacher vs α0 = n0/d: theory "
         "γ = μ1⋆/‖g‖ and the top right singular vector of W1 − W0 in simulations (η̃ = 1). "
         "W1 − W0 is η̃ times the gradient, so this overlap does not depend on η̃: one series is "
         "the whole measurement",
    sizes={
        "small": {"alpha0": "[0.25, 0.5, 1.0, 2.0, 4.0]", "d": 300, "seeds": 3},
        "full": {"alpha0": "{logspace = [-1.0, 0.9, 12]}", "d": 2000, "seeds": 8},
    },
    templates={
        "simulation": _ONESTEP_HEAD.format(method="simulate", output="simulation",
                                           description="spike overlaps over alpha0 and eta")
        + "alpha = [1.0]\neta = 1.0\nd = {d}\nseeds = {seeds}\n\n"
          "[sweep]\nalpha0 = {alpha0}\n",
    },
    draw=figures.onestep_alignment,
)

ONESTEP_GAP = Recipe(
    name="onestep-gap",
    paper=CUI,
    title="Error gap between random features and one giant step over (α0, η̃)",
    what="E_RF − E_one-step at α = 2 (d = ∞ theory) on a grid of (α0, η̃): where, and by "
         "how much, the step beats the random-features baseline; the black line is zero gap",
    sizes={
        "small": {"n_a0": 7, "n_eta": 9},
        "full": {"n_a0": 25, "n_eta": 25},
    },
    templates={
        "theory": _ONESTEP_HEAD.format(method="theory", output="theory",
                                       description="test error at alpha = 2 over alpha0 x eta")
        + 'alpha = [2.0]\nd = "inf"\n\n[sweep]\nalpha0 = {{logspace = [-1.0, 1.0, {n_a0}]}}\n'
          "eta = {{linspace = [0.0, 4.0, {n_eta}]}}\n",
    },
    draw=figures.onestep_gap,
)


# T steps of α0 = 2/T each: the same total samples n0 = 2d, split over 1, 2 or 3 giant steps.
_STEPS = {1: "[2.0]", 2: "[1.0, 1.0]", 3: "[0.6666666666666666, 0.6666666666666666, "
                                          "0.6666666666666666]"}


def _steps_templates() -> dict[str, str]:
    out = {}
    for t, a0 in _STEPS.items():
        out[f"theory_T{t}"] = (
            _ONESTEP_HEAD.format(method="theory", output=f"theory_T{t}",
                                 description=f"d = ∞ sRF theory after {t} giant step(s)")
            + f"alpha0 = {a0}\neta = {[1.0] * t}\n"
            + 'alpha = {{linspace = [0.2, 3.0, {n_alpha}]}}\nd = "inf"\n')
        out[f"simulation_T{t}"] = (
            _ONESTEP_HEAD.format(method="simulate", output=f"simulation_T{t}",
                                 description=f"the network after {t} giant step(s)")
            + f"alpha0 = {a0}\neta = {[1.0] * t}\n"
            + "alpha = {sim_alpha}\nd = {d}\nseeds = {seeds}\n")
    return out


ONESTEP_STEPS = Recipe(
    name="onestep-steps",
    paper=CUI,
    title="One, two or three giant steps at equal total samples",
    what="test error vs α = n/d after T = 1, 2, 3 giant steps (η̃ = 1 each) sharing n0 = 2d "
         "samples (α0 = 2/T per step), tanh network and target: the d = ∞ theory of the "
         "step-map recursion (lines) and simulations (mean ± std over seeds); splitting the "
         "samples over several steps lowers the error (by 17–19% from T = 1 to T = 2 at "
         "d = 1000). Beyond the paper, which takes one step",
    sizes={
        "small": {"n_alpha": 30, "sim_alpha": "[0.5, 1.0, 2.0, 3.0]", "d": 300, "seeds": 4},
        "full": {"n_alpha": 60, "sim_alpha": "[0.2, 0.5, 1.0, 1.5, 2.0, 3.0]", "d": 1000,
                 "seeds": 16},
    },
    templates=_steps_templates(),
    draw=figures.onestep_steps,
)


# The spiked surrogate against the step-noise strength η̃²/α0: (network, target, α0) per case.
_VALIDITY = {"tanh": ("tanh", "tanh", 0.5), "relu": ("relu", "tanh", 2.0)}
_VALIDITY_ETA = "[0.5, 1.0, 1.5, 2.0, 3.0]"


def _validity_templates() -> dict[str, str]:
    out = {}
    for case, (student, teacher, a0) in _VALIDITY.items():
        head = _ONESTEP_HEAD.replace('student = "tanh"', f'student = "{student}"').replace(
            'teacher = "tanh"', f'teacher = "{teacher}"')
        out[f"theory_{case}"] = (
            head.format(method="theory", output=f"theory_{case}",
                        description=f"d = ∞ sRF theory, {student}/{teacher}, alpha = 2")
            + f'alpha0 = {a0}\nalpha = [2.0]\nd = "inf"\n\n[sweep]\neta = {_VALIDITY_ETA}\n')
        out[f"stepbulk_{case}"] = (
            head.format(method="theory", output=f"stepbulk_{case}",
                        description=f"d = ∞ theory on the step's own bulk, {student}/{teacher}, "
                                    "alpha = 2")
            + f'alpha0 = {a0}\nalpha = [2.0]\nd = "inf"\nbulk = "step"\n\n[sweep]\n'
            + f"eta = {_VALIDITY_ETA}\n")
        out[f"simulation_{case}"] = (
            head.format(method="simulate", output=f"simulation_{case}",
                        description=f"the network, {student}/{teacher}, alpha = 2")
            + f"alpha0 = {a0}\nalpha = [2.0]\nd = {{d}}\nseeds = {{seeds}}\n\n"
            + f"[sweep]\neta = {_VALIDITY_ETA}\n")
    return out


ONESTEP_VALIDITY = Recipe(
    name="onestep-validity",
    paper=CUI,
    title="Where the spiked model is off: the gap to simulation against η̃²/α0",
    what="(simulation mean − d = ∞ theory)/theory of the test error at α = 2, λ = 0.01, "
         "against the step-noise strength η̃²/α0 (η̃ = 0.5 … 3): tanh network and target "
         "at α0 = 0.5, relu network on a tanh target at α0 = 2; error bars ± 1 s.e. of the "
         "simulation mean over seeds, relative to the theory. The spiked surrogate ignores the "
         "step's noise part (its strength is η̃²/α0) and, for relu (E σ'' ≠ 0), the "
         "correlation the step's linear part puts between the spike and target directions. "
         "At d = 2000, 8 seeds (--full) the simulation sits above the theory for tanh, "
         "+1.8% at η̃²/α0 = 0.5 rising to +6.3% at 8 and +9.7% at 18 (± 0.8–1.5%), and below "
         "it for relu, −1.3% at 0.125 to −5.9% at 2 and −4.9% at 4.5 (± 0.6–1.0%); these gaps "
         "do not shrink with d (d = 500–2000). At the small size (d = 300, 4 seeds) the tanh "
         "rise is resolved (−3.6% ± 2.0% at 0.5 to +6.8% ± 1.4% at 18: d = 300 adds its own "
         "few-% offset), the relu sign is not (s.e. 1.3–5.8%). Open markers, dashed: the same "
         "gap against the d = ∞ theory on the step's own bulk (bulk = \"step\", "
         "twolayer.onestep.stepbulk), which closes it: at d = 2000 the tanh gap is +1.2% to "
         "−0.7% (within 1.5 s.e. at every η̃²/α0), the relu gap −0.6% to −1.8% (± 0.6–1.1%); "
         "at d = 300 the tanh gap against it is flat in η̃²/α0 (−4% to −3%, the small size's "
         "own offset)",
    sizes={
        "small": {"d": 300, "seeds": 4},
        "full": {"d": 2000, "seeds": 8},
    },
    templates=_validity_templates(),
    draw=figures.onestep_validity,
    gallery="full",  # the small size cannot resolve the relu sign
)


# A learning rate growing with d: relu network and target, α0 = 1, η̃ = 4·d^(ζ − ½).
MONIRI = "Moniri, Lee, Hassani, Dobriban 2023, arXiv 2310.07891"
_GROWING_SIM_ZETA = "[0.05, 0.125, 0.2, 0.29, 0.355, 0.39, 0.45, 0.5]"
_GROWING_TH_ZETA = "[0.125, 0.29, 0.355, 0.3875, 0.408]"  # one inside each interval ℓ = 1 … 5
_GROWING_PARAMS = 'alpha0 = 1.0\neta = 4.0\nalpha = [2.0]\n'


def _growing_templates() -> dict[str, str]:
    head = _ONESTEP_HEAD.replace('"tanh"', '"relu"')
    out = {}
    for a_init in ("gaussian", "constant"):
        out[f"theory_{a_init}"] = (
            head.format(method="theory", output=f"theory_{a_init}",
                        description=f"d = inf limit of the growing step, a_init {a_init}")
            + _GROWING_PARAMS + f'a_init = "{a_init}"\nd = "inf"\n\n'
            + f"[sweep]\neta_exponent = {_GROWING_TH_ZETA}\n")
        out[f"simulation_{a_init}"] = (
            head.format(method="simulate", output=f"simulation_{a_init}",
                        description=f"the network with eta = 4 d^(zeta - 1/2), a_init {a_init}")
            + _GROWING_PARAMS + f'a_init = "{a_init}"\nd = {{d}}\nseeds = {{seeds}}\n'
            + "feature_spikes = 6\n\n"
            + f"[sweep]\neta_exponent = {_GROWING_SIM_ZETA}\n")
    return out


ONESTEP_GROWING = Recipe(
    name="onestep-growing",
    paper=MONIRI,
    title="A learning rate growing with d: feature spikes and test error against ζ",
    what="one step with η̃ = 4·d^(ζ − ½) (their η ∝ n^ζ; ζ = ½ is the giant step), relu network "
         "and target, α0 = 1, then ridge at α = 2, λ = 0.01. Left: the Hermite degrees k of the "
         "step direction κ whose He_k(κ) lies mostly (> ½) in the span of the post-step feature "
         "matrix's top 6 singular vectors (simulation, mean over seeds), against the limit's "
         "count #{k : k(1 − 2ζ) < 1, μ_k ≠ 0} (relu: μ_3 = μ_5 = 0); a constant second layer "
         "(Cui et al.) keeps one feature at every ζ. Right: test error, simulation (± 1 s.e.) "
         "and the d = ∞ limit (a step per interval of ζ). At d = 2000 (4 seeds) ζ = 0.2 sits "
         "on the limit (0.304 ± 0.003 vs 0.305); at ζ = 0.3 the degree-2 spike grows only as "
         "d^0.1 and the network is 6% above its limit (0.306 vs 0.289)",
    sizes={
        "small": {"d": 300, "seeds": 3},
        "full": {"d": 2000, "seeds": 4},
    },
    templates=_growing_templates(),
    draw=figures.onestep_growing,
)



# One giant step with Cui et al.'s constant second layer or a Gaussian one (network, target).
_SECOND = {"relu": ("relu", "tanh"), "tanh": ("tanh", "tanh")}


def _second_layer_templates() -> dict[str, str]:
    out = {}
    for case, (student, teacher) in _SECOND.items():
        head = _ONESTEP_HEAD.replace('student = "tanh"', f'student = "{student}"').replace(
            'teacher = "tanh"', f'teacher = "{teacher}"')
        for a_init in ("constant", "gaussian"):
            step = f'alpha0 = 2.0\neta = 1.0\na_init = "{a_init}"\n'
            out[f"theory_{case}_{a_init}"] = (
                head.format(method="theory", output=f"theory_{case}_{a_init}",
                            description=f"d = ∞ theory, {student}/{teacher}, a_init {a_init}")
                + step + 'alpha = {{linspace = [0.2, 3.0, {n_alpha}]}}\nd = "inf"\n')
            out[f"simulation_{case}_{a_init}"] = (
                head.format(method="simulate", output=f"simulation_{case}_{a_init}",
                            description=f"the network, {student}/{teacher}, a_init {a_init}")
                + step + "alpha = {sim_alpha}\nd = {d}\nseeds = {seeds}\n")
    return out


ONESTEP_SECOND_LAYER = Recipe(
    name="onestep-second-layer",
    paper=CUI,
    title="The second layer during the step: constant (Cui et al.) or Gaussian",
    what="test error vs α after one giant step (α0 = 2, η̃ = 1) with a_j = 1 or a_j ~ N(0, 1) "
         "during the step, readout refit by ridge (λ = 0.01): d = ∞ theory (lines; the Gaussian "
         "one over neuron types) and simulations (mean ± std). A Gaussian a gives each neuron "
         "its own spike a_j r, of either sign: for relu the error falls from 0.38 to 0.16 at "
         "α = 2, for the odd tanh it hardly moves. The figure prints each curve's simulation − "
         "theory range (d = 2000, 8 seeds: +1% … +3% for both Gaussian networks, the surrogate "
         "bulk's offset; −4% … +2% for the constant ones). Beyond the paper",
    sizes={
        "small": {"n_alpha": 16, "sim_alpha": "[0.5, 1.0, 2.0, 3.0]", "d": 300, "seeds": 4},
        "full": {"n_alpha": 60, "sim_alpha": "[0.25, 0.5, 1.0, 1.5, 2.0, 3.0]", "d": 2000,
                 "seeds": 8},
    },
    templates=_second_layer_templates(),
    draw=figures.onestep_second_layer,
    gallery="full",  # at d = 300 the Gaussian networks sit 5–14% above their d = ∞ theory
)

# ------------------------------------------------------------ one-pass SGD (Arnaboldi et al.)
def _sgd(method: str, output: str, description: str, params: str) -> str:
    return (f'model = "sgd"\nmethod = "{method}"\ndescription = "{description}"\n'
            f'output = "{output}.nc"\nstore = "../store"\n\n[params]\n'
            'student = "erf"\nteacher = "erf"\n' + params)


# (regime, p, k, d, gamma, noise, init_scale): the ODE starts at the overlaps the simulation
# draws (same seed, d, init_scale), so each panel compares like with like. The ODEs run past
# the specialisation (t ≈ 150–300 here), where the floors differ; SGD as far as it is cheap.
_CLASSICAL = "p = 2\nk = 2\nd = {d_cl}\ngamma = 0.015\nnoise = 0.0\ninit_scale = 0.3\n"
_HIGH_DIM = "p = 2\nk = 2\nd = {d_hd}\ngamma = 1.0\nnoise = 0.05\ninit_scale = 0.3\n"
_MEAN_FIELD = "p = {p_mf}\nk = 1\nd = {d_mf}\ngamma = 0.5\nnoise = 0.0\ninit_scale = 1.0\n" \
              "t_max = {t_mf}\n"

SGD_REGIMES = Recipe(
    name="sgd-regimes",
    paper=ARNABOLDI,
    title="SGD risk curves in the classical, high-dimensional and mean-field regimes",
    what="excess risk vs t = νγ/(pd), erf committees: classical (γ/p = 0.0075: the ODE is "
         "gradient flow), high-dimensional (γ/p = 0.5, Δ = 0.05: past the specialisation at "
         "t ≈ 150–300 the variance term leaves a floor above gradient flow's), mean-field "
         "(p ≫ 1, γ/p = 0.005: the reduced ODE, exact as p → ∞); simulations (mean ± std over "
         "seeds) on top, up to the time stated in the panel (the small size stops SGD on the "
         "plateau; --full follows it through the specialisation)",
    sizes={
        "small": {"d_cl": 100, "t_cl": 20, "d_hd": 1000, "t_hd": 30, "t_ode": 1000,
                  "p_mf": 100, "d_mf": 100, "t_mf": 5, "seeds": 8, "seeds_mf": 4},
        "full": {"d_cl": 1000, "t_cl": 400, "d_hd": 10000, "t_hd": 500, "t_ode": 1000,
                 "p_mf": 400, "d_mf": 200, "t_mf": 10, "seeds": 16, "seeds_mf": 8},
    },
    templates={
        "classical_ode": _sgd("ode", "classical_ode", "classical regime: ODE",
                              _CLASSICAL + "t_max = {t_ode}\n"),
        "classical_flow": _sgd("ode", "classical_flow", "classical regime: gradient flow",
                               _CLASSICAL + "t_max = {t_ode}\nvariance = false\n"),
        "classical_sim": _sgd("simulate", "classical_sim", "classical regime: SGD",
                              _CLASSICAL + "t_max = {t_cl}\nseeds = {seeds}\n"),
        "highdim_ode": _sgd("ode", "highdim_ode", "high-dimensional regime: ODE",
                            _HIGH_DIM + "t_max = {t_ode}\n"),
        "highdim_flow": _sgd("ode", "highdim_flow", "high-dimensional regime: gradient flow",
                             _HIGH_DIM + "t_max = {t_ode}\nvariance = false\n"),
        "highdim_sim": _sgd("simulate", "highdim_sim", "high-dimensional regime: SGD",
                            _HIGH_DIM + "t_max = {t_hd}\nseeds = {seeds}\n"),
        "meanfield_ode": _sgd("ode", "meanfield_ode", "mean-field regime: reduced ODE",
                              _MEAN_FIELD + "reduction = \"wide\"\n"),
        "meanfield_sim": _sgd("simulate", "meanfield_sim", "mean-field regime: SGD",
                              _MEAN_FIELD + "seeds = {seeds_mf}\n"),
    },
    draw=figures.sgd_regimes,
)

SGD_PHASES = Recipe(
    name="sgd-phases",
    paper=ARNABOLDI,
    title="Phase diagram of one-pass SGD over the exponents of p and γ",
    what="with p ∝ d^κ and γ ∝ d^(−δ), drawn as in Veiga et al. 2022 (δ across, κ up, their "
         "names: perfect learning, plateau, bad learning, no ODE) with the limits of Arnaboldi et "
         "al. 2023 in the legend; from twolayer.sgd.regimes, a pure-theory figure. Departure: "
         "the package's no-ODE edge is κ + δ = −½ (one step then moves Q_jj by γ²/(p²d) = "
         "d^(−1−2(κ+δ)), which does not vanish), the authors' code uses δ = −(1 + κ)/2 (dotted); "
         "SGD simulated between the two lines (star: κ = 1, δ = −1.25) moves Q_jj in one step "
         "by 0.029, 0.012, 0.0044 (s.d.) at d = 64, 256, 1024: the ODE's premise holds there",
    sizes={"small": {"n": 301}, "full": {"n": 601}},
    templates={},
    draw=figures.sgd_phases,
)

_SQUARE_D3 = ('model = "sgd"\nmethod = "{method}"\ndescription = "{description}"\n'
              'output = "{output}.nc"\nstore = "../store"\n\n[params]\n'
              'student = "square"\nteacher = "square"\np = {{p}}\nk = 1\nd = 3\n'
              'gamma = 1.0\nnoise = 0.0\ninit_scale = 1.0\n')

SGD_MEANFIELD = Recipe(
    name="sgd-meanfield",
    paper=ARNABOLDI,
    title="The mean-field example at d = 3: square activations, p = 5000",
    what="excess risk vs t = νγ/(pd) for square student and teacher, p = 5000, k = 1, d = 3, "
         "γ = 1 (γ/p = 2e-4), Δ = 0: the exact closure ODE in (m, S) = (mean row of W, WᵀW/p) "
         "— exact drift at any d, cost independent of p — to t = 1000, and SGD from the same "
         "draw (mean ± std over seeds) as far as it is cheap (~25 µs per step per run, "
         "pd/γ = 15000 steps per unit of t). The wide reduction does not apply here: its "
         "uncorrelated orthogonal parts need d ≫ 1",
    sizes={"small": {"p": 5000, "t_ode": 1000, "t_sim": 5, "seeds": 6},
           "full": {"p": 5000, "t_ode": 1000, "t_sim": 100, "seeds": 8}},
    templates={
        "ode": _SQUARE_D3.format(method="ode", output="ode",
                                 description="exact closure ODE in (m, S)")
        + 't_max = {t_ode}\nreduction = "quadratic"\n',
        "simulation": _SQUARE_D3.format(method="simulate", output="simulation",
                                        description="SGD, same start, independent data")
        + "t_max = {t_sim}\nseeds = {seeds}\n",
    },
    draw=figures.sgd_meanfield,
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    ONESTEP_CURVES, ONESTEP_ALIGNMENT, ONESTEP_GAP, ONESTEP_STEPS, ONESTEP_VALIDITY,
    ONESTEP_GROWING, ONESTEP_SECOND_LAYER,
    SGD_REGIMES, SGD_MEANFIELD, SGD_PHASES)}
