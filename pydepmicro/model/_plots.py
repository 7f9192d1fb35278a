"""Training-curve figure: one panel per phase, training and validation loss against the step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_TITLES = {"pretrain": "VAE pretraining", "vae": "VAE (target table)", "denoiser": "Denoiser (DAT)"}


def plot_history(history: pd.DataFrame, path: Path | str | None = None):
    """Plot ``DepMicroDiff.history_frame``; saves to ``path`` (PNG) when given; returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    phases = [p for p in ("pretrain", "vae", "denoiser") if p in set(history.get("phase", []))]
    fig, axes = plt.subplots(1, max(1, len(phases)), figsize=(4.2 * max(1, len(phases)), 3.4), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        part = history[history["phase"] == phase]
        for column, style in (("train_loss", "-"), ("val_loss", "--")):
            if column in part and part[column].notna().any():
                ax.plot(part["step"], part[column], style, label=column.replace("_loss", ""))
        ax.set_title(_TITLES[phase])
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if (part[["train_loss"]] > 0).all().all():
            ax.set_yscale("log")
        ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_imputation(result, truth_log=None, dropouts=None, path: Path | str | None = None):
    """Look at an imputation: where the zeros' dropout probabilities lie and, when the truth is known
    (simulated data, masked benchmarks), imputed against true values.

    ``truth_log`` (n, q): true values on the model's log scale; ``dropouts`` (n, q) bool: which zeros
    are technical dropouts. Saves to ``path`` (PNG) when given and returns the path, else the figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    panels = 1 + (truth_log is not None)
    fig, axes = plt.subplots(1, panels + 1, figsize=(4.3 * (panels + 1), 3.6), squeeze=False)
    ax = axes[0][0]
    prob = result.dropout_prob
    zeros = ~np.isnan(prob)
    bins = np.linspace(0, 1, 26)
    if dropouts is not None:
        ax.hist(prob[zeros & ~dropouts], bins=bins, alpha=0.7, label="true absences", density=True)
        ax.hist(prob[zeros & dropouts], bins=bins, alpha=0.7, label="dropouts", density=True)
        ax.legend(frameon=False)
    else:
        ax.hist(prob[zeros], bins=bins)
    threshold = result.options.get("dropout_threshold", 0.5)
    ax.axvline(threshold, color="k", lw=0.8, ls="--")
    ax.set_xlabel("dropout probability of a zero")
    ax.set_ylabel("density" if dropouts is not None else "zeros")
    ax.set_title("Which zeros are dropouts?")

    ax = axes[0][1]
    filled = result.imputed
    ax.scatter(result.values[filled], result.spread[filled], s=4, alpha=0.4)
    ax.set_xlabel("imputed value (log scale)")
    ax.set_ylabel("spread over draws (sd)")
    ax.set_title(f"{int(filled.sum())} imputed entries")
    if truth_log is not None:
        ax = axes[0][2]
        sel = filled if dropouts is None else filled & dropouts
        t, v = truth_log[sel], result.values[sel]
        ax.scatter(t, v, s=4, alpha=0.4)
        top = float(max(t.max(initial=0), v.max(initial=0)))
        ax.plot([0, top], [0, top], color="k", lw=0.8)
        r = float(np.corrcoef(t, v)[0, 1]) if sel.sum() > 2 else float("nan")
        ax.set_xlabel("true value (log scale)")
        ax.set_ylabel("imputed value")
        ax.set_title(f"imputed vs truth (PCC {r:.2f})")
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
