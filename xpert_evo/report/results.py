"""Turn a `SearchResult` into the report's tables, and export chosen designs for NeuroSim."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.files import atomic_path, atomic_write
from xpert_evo.hardware import write_neurosim_csv
from xpert_evo.report import RunTables, accuracy_column
from xpert_evo.report.refinement import rounds_meta
from xpert_evo.search.archive import HW_METRICS, Bounds, nondominated
from xpert_evo.search.loop import SearchResult
from xpert_evo.space.backbone import GEOMETRY
from xpert_evo.space.genome import ADC_TYPES, GENE_COLUMNS, GENE_NAMES, Genomes


def versions() -> dict[str, str]:
    """Versions of python and the numerical packages a result depends on."""
    import numpy
    import pymoo
    import torch

    import xpert_evo

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pymoo": pymoo.__version__,
        "torch": torch.__version__,
        "xpert_evo": getattr(xpert_evo, "__version__", "dev"),
    }


def _joined(values: np.ndarray) -> pd.Series:
    return pd.DataFrame(values).astype(str).agg("-".join, axis=1)


def gene_frame(genomes: Genomes) -> pd.DataFrame:
    """Readable genes: one dash-joined column per gene ("64-128-...", "flash-sar-...") followed
    by one column per gene and layer (``channels_1`` ... ``input_bits_13``).
    """
    readable = {
        gene: (np.asarray(ADC_TYPES)[genomes.adc_flash] if gene == "adc_flash"
               else getattr(genomes, gene))
        for gene in GENE_NAMES
    }
    compact = {GENE_COLUMNS[g]: _joined(v) for g, v in readable.items()}
    per_layer = {
        f"{GENE_COLUMNS[g]}_{layer + 1}": v[:, layer]
        for g, v in readable.items()
        for layer in range(genomes.n_layers)
    }
    return pd.DataFrame({**compact, **per_layer})


def knee_index(f: np.ndarray) -> int:
    """Row of the knee of a 2-objective front ``f`` (N, 2), minimised and normalised: the point
    farthest from the line through the two extreme points, on the ideal point's side (the point
    closest to the ideal when N < 3 or the extremes coincide).

    Kept over ``pymoo.mcdm.HighTradeoffPoints``: that returns the trade-off outliers among
    neighbours (none, or several; it raises on two points), not the one knee of the front.
    """
    f = np.asarray(f, dtype=float)
    a, b = f[np.argmin(f[:, 0])], f[np.argmin(f[:, 1])]
    direction = b - a
    if len(f) < 3 or not np.any(direction):
        return int(np.argmin(f.sum(axis=1)))
    ideal = np.array([a[0], b[1]])
    side = np.sign(direction[0] * (ideal[1] - a[1]) - direction[1] * (ideal[0] - a[0]))
    cross = direction[0] * (f[:, 1] - a[1]) - direction[1] * (f[:, 0] - a[0])
    return int(np.argmax(side * cross))


def provenance(origin: np.ndarray, is_percent: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where each accuracy comes from, for the run tables.

    Args:
        origin: (N,) the `AccuracyEstimate.origin` of each design.
        is_percent: whether the accuracy column is in %.

    Returns:
        (accuracy_from (N,): the origin ("predicted", "proxy", "surrogate" or "trained");
        measured (N,): True where the number in the accuracy column is itself a measurement: a
        trained network's accuracy when the column is in %, a true proxy score when the column is
        the proxy's scale. Everything else is a prediction.)
    """
    origin = np.asarray(origin, dtype=str)
    return origin, origin == ("trained" if is_percent else "proxy")


def design_frame(result: SearchResult, index: np.ndarray) -> pd.DataFrame:
    """One row per archived design ``index``: id, generation, accuracy (the net accuracy the
    search ranked by, its std, where it came from and whether it is measured, see `provenance`),
    the precision loss (with a penalty model), hardware metrics, ratios vs the baseline,
    feasibility, the data set (which `python -m xpert_evo.predict` reads) and readable genes.
    Every accuracy number is the archive's, as the search computed it.
    """
    a = result.archive
    accuracy = result.accuracy
    acc = accuracy_column(accuracy.label)
    genomes = result.setup.space.decode(a.x[index])
    accuracy_from, measured = provenance(a.origin[index], accuracy.is_percent)
    hw = a.hw[index]
    base = result.baseline_hw
    frame = pd.DataFrame(
        {
            "design": index,
            "generation": a.generation[index],
            acc: a.net[index],
            f"{acc}_std": a.std[index],
            "accuracy_from": accuracy_from,
            "accuracy_measured": measured,
            **{m: hw[:, i] for i, m in enumerate(HW_METRICS)},
            "edap_reduction_x": base[HW_METRICS.index("edap")] / hw[:, HW_METRICS.index("edap")],
            "tops_per_w_x": hw[:, HW_METRICS.index("tops_per_w")]
            / base[HW_METRICS.index("tops_per_w")],
            "tops_per_mm2_x": hw[:, HW_METRICS.index("tops_per_mm2")]
            / base[HW_METRICS.index("tops_per_mm2")],
            "feasible": a.cv[index] <= 0,
        }
    )
    dataset = (result.setup.config.get("data") or {}).get("dataset")
    if dataset in GEOMETRY:  # `python -m xpert_evo.predict` reads it; data-free runs have none
        frame["dataset"] = dataset
    if result.setup.penalty is not None:
        frame.insert(6, "precision_loss_pp", a.loss_pp[index])
    genes = gene_frame(genomes)
    return pd.concat([frame, genes], axis=1)


def front_roles(
    frame: pd.DataFrame, acc: str, bounds: Bounds, baseline_accuracy: float
) -> dict[str, int]:
    """Row labels of the named designs of a front ``frame`` (mutually non-dominated rows):
    knee (`knee_index` on the objectives normalised by ``bounds``), best_edap, best_accuracy,
    and iso_accuracy (lowest EDAP at accuracy >= ``baseline_accuracy``) when there is one.

    ``baseline_accuracy`` is the baseline's net accuracy, scored like the designs (its own bits'
    crossbar loss taken off), so the comparison is net against net."""
    if not len(frame):
        return {}
    f = np.column_stack([-frame[acc].to_numpy(float), np.log10(frame["edap"].to_numpy(float))])
    roles = {
        "knee": int(frame.index[knee_index(bounds.normalise(f))]),
        "best_edap": int(frame["edap"].idxmin()),
        "best_accuracy": int(frame[acc].idxmax()),
    }
    iso = frame.index[frame[acc] >= baseline_accuracy]
    if len(iso):
        roles["iso_accuracy"] = int(frame.loc[iso, "edap"].idxmin())
    return roles


def headline(row: pd.Series, acc: str) -> dict[str, Any]:
    """A headline design's facts for run.json and the summary: design, edap_reduction_x,
    accuracy, accuracy_std, accuracy_from, measured."""
    return {
        "design": int(row["design"]),
        "edap_reduction_x": float(row["edap_reduction_x"]),
        "accuracy": float(row[acc]),
        "accuracy_std": float(row[f"{acc}_std"]),
        "accuracy_from": str(row["accuracy_from"]),
        "measured": bool(row["accuracy_measured"]),
    }


def measured_headlines(
    archive: pd.DataFrame, acc: str, bounds: Bounds, baseline_accuracy: float
) -> dict[str, Any]:
    """The headlines restricted to designs whose accuracy is measured (``accuracy_measured``):
    the knee of their feasible front and their lowest-EDAP design at accuracy no worse than the
    baseline's. Keys: n_designs (measured feasible designs), knee, best_iso_accuracy (None
    where there is none)."""
    rows = archive[archive["accuracy_measured"] & archive["feasible"]]
    f = np.column_stack([-rows[acc].to_numpy(float), np.log10(rows["edap"].to_numpy(float))])
    front = rows.iloc[nondominated(f)] if len(rows) else rows
    roles = front_roles(front, acc, bounds, baseline_accuracy)
    return {
        "n_designs": len(rows),
        "knee": headline(archive.loc[roles["knee"]], acc) if "knee" in roles else None,
        "best_iso_accuracy": (
            headline(archive.loc[roles["iso_accuracy"]], acc) if "iso_accuracy" in roles
            else None
        ),
    }


def build_tables(
    result: SearchResult, extra_meta: dict[str, Any] | None = None
) -> RunTables:
    """The run's tables: ``pareto`` (front, with a ``role`` column naming the knee, best_edap,
    best_accuracy and iso_accuracy designs), ``archive``, ``history`` and ``meta``.

    ``meta`` carries the headline reductions with where their accuracy comes from: ``knee`` and
    ``best_iso_accuracy`` (picked from the whole front, whose accuracies may be predictions)
    and ``measured_only`` (the same picked among designs whose accuracy is measured).
    """
    setup, a = result.setup, result.archive
    est = result.accuracy
    acc = accuracy_column(est.label)
    archive = design_frame(result, np.arange(len(a)))
    pareto = archive.iloc[result.front].reset_index(drop=True)
    pareto.insert(1, "role", "")
    pareto.insert(2, "accuracy_source", est.source)
    base_acc = result.baseline_accuracy
    base_net = float(base_acc.net[0])
    roles = front_roles(pareto, acc, result.bounds, base_net)
    for role, row in roles.items():
        current = pareto.at[row, "role"]
        pareto.at[row, "role"] = f"{current}+{role}" if current else role
    base_genes = gene_frame(setup.space.baseline).iloc[0]
    base_from, base_measured = provenance(base_acc.origin, est.is_percent)
    baseline = {
        "name": setup.space.baseline_name,
        "accuracy": base_net,
        "accuracy_std": float(base_acc.std[0]),
        "accuracy_from": str(base_from[0]),
        "accuracy_measured": bool(base_measured[0]),
        "clean_accuracy": float(base_acc.clean[0]),
        "precision_loss_pp": float(base_acc.loss_pp[0]) if setup.penalty is not None else None,
        **{m: float(v) for m, v in zip(HW_METRICS, result.baseline_hw, strict=True)},
        **{c: base_genes[c] for c in GENE_COLUMNS.values()},
    }
    front_f = a.objectives()[result.front]
    fits = getattr(est, "fits", [])
    meta = {
        "accuracy_column": acc,
        "accuracy_label": est.label,
        "accuracy_is_percent": bool(est.is_percent),
        "accuracy_source": est.source,
        "surrogate": (
            f"fitted {len(fits)} times; last fit "
            + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in fits[-1].items())
            if fits else "none (every design scored with the "
            + ("accuracy predictor)" if est.kind == "predicted" else "true proxy)")
        ),
        "surrogate_fits": fits,
        "refinement": refinement_meta(result),
        "accuracy_basis": est.basis,
        "baseline": baseline,
        "knee": headline(pareto.loc[roles["knee"]], acc) if "knee" in roles else None,
        "best_iso_accuracy": (
            headline(pareto.loc[roles["iso_accuracy"]], acc) if "iso_accuracy" in roles else None
        ),
        "measured_only": measured_headlines(archive, acc, result.bounds, base_net),
        "seed": setup.seed,
        "algorithm": dict(setup.config.get("algorithm", {})),
        "constraints": dict(setup.config.get("constraints", {})),
        "crossbar_loss_modelled": setup.penalty is not None,
        "precision_bound": (
            {"bound_pp": setup.constraints.precision_loss_pp,
             "heldout_rmse_pp": setup.penalty.heldout_rmse_pp,
             "heldout_rows": int(setup.penalty.heldout_rows)}
            if setup.penalty is not None and setup.constraints.precision_loss_pp is not None
            else None
        ),
        "n_evals": result.n_evals,
        "n_true_evals": est.n_scored,
        "score_kind": est.kind,
        "search_s": result.search_s,
        "hypervolume": result.bounds.hypervolume(front_f) if len(front_f) else 0.0,
        "hv_bounds": {"ideal": result.bounds.ideal, "nadir": result.bounds.nadir,
                      "ref": result.bounds.ref},
        "versions": versions(),
        "config": setup.config,
        **(extra_meta or {}),
    }
    rounds = int((setup.config.get("verify") or {}).get("rounds", 0) or 0)
    if rounds:
        meta["verify_rounds"] = rounds_meta(result.verified, rounds)
    return RunTables(pareto=pareto, archive=archive, history=result.history, meta=meta)


def refinement_meta(result: SearchResult) -> dict[str, Any] | None:
    """Facts of online refinement for the report (None when no network was trained).

    Keys: n_trained, designs (archive indices of the trained designs that were searched, i.e.
    not the initial ones), description, last_fit (the measured-accuracy model's leave-one-out
    statistics), prediction_mae_pp (mean |predicted before training - measured clean| over the
    rounds after the first fit, NaN if none), penalty_mae_pp (mean |measured clean - predicted
    precision loss - measured crossbar accuracy|, NaN without crossbar measurements).
    """
    log = result.refined
    if not len(log):
        return None
    model = getattr(result.accuracy, "model", None)
    predicted = log["predicted_pct"].to_numpy(dtype=float)
    nonideal = log["nonideal_accuracy_pct"].to_numpy(dtype=float)
    clean = log["accuracy_pct"].to_numpy(dtype=float)
    hit, crossbar = np.isfinite(predicted), np.isfinite(nonideal)
    return {
        "n_trained": int(len(log)),
        "designs": [int(d) for d in log["design"] if d >= 0],
        "description": result.setup.measured_description,
        "last_fit": dict(model.fits[-1]) if model is not None and model.fits else {},
        "prediction_mae_pp": float(np.abs(predicted - clean)[hit].mean()) if hit.any()
        else float("nan"),
        "n_predicted": int(hit.sum()),
        "penalty_mae_pp": float(
            np.abs(log["penalty_predicted_nonideal_pct"].to_numpy(float) - nonideal)[crossbar]
            .mean()
        ) if crossbar.any() else float("nan"),
    }


def export_designs(result: SearchResult, tables: RunTables, out_dir: str | Path) -> list[Path]:
    """For the knee and best-EDAP designs write ``designs/<role>_layers.csv`` (per-layer cost
    table) and ``designs/<role>_neurosim.csv`` (NeuroSim network CSV); returns the paths.

    The per-layer table holds each layer's genes (the classifier's peripheral genes are the last
    conv layer's, as the cost model prices it) and geometry (``cin``, ``cout``, ``out_map``,
    ``k``), so ``python -m xpert_evo.cost designs/knee_layers.csv`` re-costs it layer by layer.
    """
    out = Path(out_dir) / "designs"
    paths: list[Path] = []
    roles = tables.pareto["role"].astype(str)
    for role in ("knee", "best_edap"):
        rows = tables.pareto[roles.str.contains(rf"(?:^|\+){role}(?:$|\+)")]
        if not len(rows):
            continue
        design = int(rows.iloc[0]["design"])
        genome = result.setup.space.decode(result.archive.x[design])
        out.mkdir(parents=True, exist_ok=True)
        cost = result.setup.cost_model
        layers = cost.evaluate(genome).layer_frame(0)
        genes = gene_frame(genome)
        per_layer = pd.DataFrame(
            {col: [genes.at[0, f"{col}_{i + 1}"] for i in range(genome.n_layers)]
             for col in GENE_COLUMNS.values()}
        )
        classifier = per_layer.iloc[-1:].assign(channels=result.setup.backbone.num_classes)
        per_layer = pd.concat([per_layer, classifier], ignore_index=True)
        cin, cout = cost.layer_channels(genome)
        per_layer = per_layer.assign(cin=cin[:, 0].astype(int), cout=cout[:, 0].astype(int),
                                     out_map=cost.out_map.astype(int), k=cost.kernel.astype(int))
        table = pd.concat([layers.iloc[:, :1], per_layer, layers.iloc[:, 1:]], axis=1)
        paths.append(atomic_write(out / f"{role}_layers.csv",
                                  lambda fh, table=table: table.to_csv(fh, index=False)))
        neurosim = out / f"{role}_neurosim.csv"
        with atomic_path(neurosim) as tmp:
            write_neurosim_csv(genome, result.setup.backbone, tmp)
        paths.append(neurosim)
    return paths
