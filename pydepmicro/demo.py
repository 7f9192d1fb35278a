"""The main job on the embedded example (``depmicro demo``): inspect, find dependencies, impute, check.

The example is simulated (:func:`pydepmicro.datasets.load_example`), so the truth behind its zeros
is known: the demo re-runs the simulator with the same arguments and reports how well the model
told technical dropouts from true absences, beside KNN (zeros treated as missing) on the same input.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io._atomic import atomic_outputs

#: the arguments the embedded example was simulated with (inst/scripts/make_extdata.py)
EXAMPLE_ARGS = dict(n_samples=200, n_taxa=60, zero_fraction=0.7, seed=2026)
QUICK = dict(hparams=dict(d_model=16, n_layers=1, vae_d_model=16, vae_layers=1, n_blocks=2),
             fit=dict(vae_steps=40, dat_steps=40), draws=2, sampler="ddim:5")
FULL = dict(hparams={}, fit={}, draws=5, sampler="ddim:20")


def _echo(message: str, echo) -> None:
    if echo is not None:
        echo(message)


def run_demo(out_dir, *, force: bool = False, quick: bool = False, progress: bool = True, echo=print) -> dict:
    """Write the demo's outputs into ``out_dir``; returns the numbers it reports."""
    from .datasets import load_example, load_example_edges
    from .dependency import dependency_matrix
    from .dependency_plots import labels_from_taxonomy, save_dependency_plot
    from .inspect import format_summary, plot_summary, summarise
    from .io import write_imputation, write_table
    from .model import DepMicroDiff

    settings = QUICK if quick else FULL
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = load_example()
    _echo(f"example data: {table!r}", echo)
    written = write_table(table, out / "example.biom", force=force)
    summary = summarise(table)
    with atomic_outputs({"txt": out / "summary.txt", "json": out / "summary.json"}, force=force) as temps:
        temps["txt"].write_text(format_summary(summary) + "\n")
        temps["json"].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    written += [out / "summary.txt", out / "summary.json", plot_summary(table, out / "overview.png", force=force)]
    _echo(format_summary(summary), echo)

    # -- dependencies -------------------------------------------------------------------------------
    deps = dependency_matrix(table, method="both", seed=0)
    with atomic_outputs({"edges": out / "edges.tsv"}, force=force) as temps:
        deps.edges.to_csv(temps["edges"], sep="\t", index=False)
    written += [out / "edges.tsv", save_dependency_plot(deps, out / "dependencies.png",
                                                        labels=labels_from_taxonomy(table.taxonomy), force=force)]
    planted = {frozenset(pair) for pair in load_example_edges()[["source", "target"]].itertuples(index=False)}
    called = {frozenset(pair) for pair in zip(deps.edges["source"], deps.edges["target"])}
    hits = len(planted & called)
    report = {"dependent_pairs": len(called), "planted_recovered": hits, "planted": len(planted)}
    _echo(f"dependencies: {len(called)} dependent pairs called at q < 0.05; of the {len(planted)} planted, "
          f"{hits} recovered (recall {hits / len(planted):.2f}, precision {hits / max(len(called), 1):.2f}; "
          "pairwise tests also call indirect dependencies)", echo)

    # -- imputation -----------------------------------------------------------------------------------
    model_dir = out / "model"
    if model_dir.exists() and not force:
        from .errors import OutputExistsError

        raise OutputExistsError(f"output exists: {model_dir}", hint="pass --force to overwrite the demo's outputs")
    # the default model: the graph above is a result in its own right, but Dep left the model's
    # attention by default (no effect on accuracy; README, "Taxon dependencies")
    model = DepMicroDiff(device="cpu", **settings["hparams"])
    model.fit(table, seed=0, progress=progress, **settings["fit"])
    result = model.impute(table, draws=settings["draws"], sampler=settings["sampler"], zeros="auto", seed=0,
                          progress=progress)
    written += write_imputation(result, out / "imputed.biom", force=force)
    model.save(model_dir, force=force)
    written.append(model_dir)
    _echo(result.summary(), echo)
    check = check_against_truth(table, result)
    report.update(check)
    if check:
        _echo(format_check(check), echo)
        from .model._plots import plot_imputation

        written.append(plot_imputation(result, check.pop("_truth_log"), check.pop("_dropouts"),
                                       out / "imputation.png"))
    with atomic_outputs({"json": out / "imputation_check.json"}, force=force) as temps:
        temps["json"].write_text(json.dumps({k: v for k, v in report.items() if not k.startswith("_")},
                                            indent=2) + "\n")
    written.append(out / "imputation_check.json")
    _echo("wrote " + ", ".join(str(p) for p in written), echo)
    return report


def check_against_truth(table, result) -> dict:
    """Dropout detection and values against the simulator's truth; {} when the table is not the example."""
    from sklearn.metrics import roc_auc_score

    from .datasets import simulate
    from .evaluate import impute_knn
    from .transforms import preprocess

    sim = simulate(**EXAMPLE_ARGS)
    if sim.table.counts.shape != table.counts.shape or not np.array_equal(sim.table.counts, table.counts):
        return {}
    dropouts = np.asarray(sim.dropout_mask, dtype=bool)
    truth = preprocess(sim.true_counts, base=np.e)
    zeros = table.counts == 0
    true_zero = zeros & ~dropouts
    ours = preprocess(result.table.counts, base=np.e)
    knn = impute_knn(preprocess(table.counts, base=np.e), k=10, variant="zeros_as_missing")

    def pcc(est):
        return float(np.corrcoef(truth[dropouts], est[dropouts])[0, 1])

    replaced = result.imputed & zeros
    return {
        "dropouts": int(dropouts.sum()), "true_zeros": int(true_zero.sum()),
        "dropout_auroc": float(roc_auc_score(dropouts[zeros], result.dropout_prob[zeros])),
        "zeros_replaced": int(replaced.sum()),
        "replaced_that_were_dropouts": float(dropouts[replaced].mean()) if replaced.any() else float("nan"),
        "dropouts_recovered": float(replaced[dropouts].mean()),
        "false_fill": float(replaced[true_zero].mean()),
        "pcc_on_dropouts": pcc(ours),
        "knn_false_fill": float((knn[true_zero] > 0.01).mean()), "knn_pcc_on_dropouts": pcc(knn),
        "_truth_log": truth, "_dropouts": dropouts,
    }


def format_check(c: dict) -> str:
    return "\n".join([
        f"check against the simulator's truth ({c['dropouts']} technical dropouts among the zeros, "
        f"{c['true_zeros']} true absences):",
        f"  dropout probability separates dropouts from true zeros: AUROC {c['dropout_auroc']:.3f}",
        f"  zeros replaced: {c['zeros_replaced']}, of which dropouts {c['replaced_that_were_dropouts']:.1%}; "
        f"dropouts recovered {c['dropouts_recovered']:.1%}; true zeros filled (false fill) {c['false_fill']:.1%}",
        f"  log-abundance PCC on dropouts: {c['pcc_on_dropouts']:.3f} "
        f"(KNN-10 with zeros as missing: {c['knn_pcc_on_dropouts']:.3f}, false fill {c['knn_false_fill']:.1%})",
    ])
