# %% [markdown]
# # Imputing a sparse microbiome table with DepMicroDiff
#
# A runnable guide (percent-format script: open it in Jupyter with jupytext, or run it with
# `python vignettes/02_imputation.py OUTDIR`). It trains the model on the embedded example cohort,
# imputes it, looks at what was imputed and how sure the model is, checks the result against the
# simulator's truth, saves and reloads the model, and writes the outputs a collaborator can open.
# The test suite runs it, so it stays true.
#
# The guide trains a **small model for few steps** so that it runs in about a minute on a laptop
# CPU. For real work keep the defaults (`DepMicroDiff()`, `fit(table)`), or run
# `depmicro impute table.biom --meta meta.tsv -o imputed.biom` in a shell.

# %%
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import pydepmicro as pdm
from pydepmicro.datasets import load_example, simulate
from pydepmicro.model import DepMicroDiff, plot_history, plot_imputation
from pydepmicro.transforms import preprocess

out = Path(sys.argv[1] if len(sys.argv) > 1 else "vignette-output")
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The data
# 200 simulated tumour samples x 60 taxa, 70% zeros. About a fifth of the true nonzero counts were
# lost to technical dropout, which is what imputation should recover, without filling the zeros
# that are real absences. The metadata (sample type, stage, age, gender) conditions the model.

# %%
table = load_example()
print(table)

# %% [markdown]
# ## Train
# `fit` fine-tunes the VAE (one latent token per taxon), finds the taxon dependency graph for the
# attention mask when asked to (here by F-tests; the default model leaves it out, as it showed no
# effect on accuracy), and trains the Dependency-Aware Transformer to
# denoise latents conditioned on the observed part of each sample and on the metadata, which the
# packaged all-MiniLM-L6-v2 encodes. During training random nonzero entries are hidden or zeroed,
# so the model learns both missing values and silent dropouts. A tenth of the samples is held out
# for the validation curves.

# %%
model = DepMicroDiff(d_model=32, n_layers=2, vae_d_model=32, n_blocks=3, dependency="ftest", device="cpu")
model.fit(table, vae_steps=300, dat_steps=400, seed=0, progress=False)
print(model)
print(model.history_frame[["phase", "step", "train_loss", "val_loss"]].tail(4).to_string(index=False))
plot_history(model.history_frame, out / "training_curves.png")

# %% [markdown]
# ## Impute
# Missing entries take the VAE's posterior mean given the observed entries, and zeros are judged
# and filled from the denoiser's estimate (`estimate="auto"`, the default; `"vae"` or `"mean"` would
# take one pass for both: the better pass for each use on TCMA is in the README); each
# sample is also drawn several times from the denoiser (`draws`) and the spread is the standard
# deviation of the draws, scaled by a factor calibrated at fit so that value +- 1.645 spread held 90%
# of held-out truths (`model.spread_scale()`; `estimate="draws"` would average the draws instead). `zeros="auto"` replaces a
# zero only when the model's presence probability says it is a dropout: above the threshold the
# model calibrated at fit on simulated dropouts of its own samples
# (`model.dropout_threshold()`); `"keep"` fills only missing (NaN) entries; `"impute"` replaces every
# zero. Observed nonzero counts are never touched.

# %%
result = model.impute(table, draws=4, sampler="ddim:15", zeros="auto", seed=0, progress=False)
print(f"calibrated dropout threshold: {model.dropout_threshold():.3f}")
print(result.summary())
observed = table.counts > 0
assert np.array_equal(result.table.counts[observed], table.counts[observed])
print(result.frame("dropout_prob").iloc[:3, :6].round(2))

# %% [markdown]
# ## How good is it? (the truth is known for simulated data)
# Re-running the simulator with the example's arguments gives the true counts and which zeros are
# dropouts.

# %%
sim = simulate(n_samples=200, n_taxa=60, zero_fraction=0.7, seed=2026)
assert np.array_equal(sim.table.counts, table.counts)
truth = preprocess(sim.true_counts, base=np.e)
dropouts = sim.dropout_mask.astype(bool)
zeros = table.counts == 0
replaced = result.imputed & zeros
print(f"dropouts among the zeros: {dropouts.sum()} of {zeros.sum()}")
print(f"zeros replaced: {replaced.sum()}; of these dropouts: {dropouts[replaced].mean():.1%}; "
      f"true absences filled: {replaced[zeros & ~dropouts].mean():.1%}")
from sklearn.metrics import roc_auc_score  # noqa: E402

print(f"dropout probability AUROC (dropouts vs true zeros): "
      f"{roc_auc_score(dropouts[zeros], result.dropout_prob[zeros]):.3f}")
plot_imputation(result, truth, dropouts, out / "imputation.png")

# %% [markdown]
# ## Before and after, per taxon
# Prevalence per taxon before imputation, after, and in the truth: imputation should move the
# observed prevalence toward the true one, not past it.

# %%
prev_before = (table.counts > 0).mean(0)
prev_after = (result.table.counts > 0).mean(0)
prev_true = (sim.true_counts > 0).mean(0)
order = np.argsort(prev_true)
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(prev_true[order], "k-", label="truth")
ax.plot(prev_before[order], ".", label="observed")
ax.plot(prev_after[order], ".", label="imputed")
ax.set_xlabel("taxa (by true prevalence)")
ax.set_ylabel("prevalence")
ax.legend(frameon=False)
fig.tight_layout()
fig.savefig(out / "prevalence.png", dpi=110)
print(f"mean |prevalence error|: observed {np.abs(prev_before - prev_true).mean():.3f}, "
      f"imputed {np.abs(prev_after - prev_true).mean():.3f}")

# %% [markdown]
# ## Save, reload, reuse
# A model folder holds config.json, model.safetensors (weights; loading runs no code) and taxa.tsv,
# plus the training curves and the dependency edges. The same seed gives the same imputation.

# %%
model.save(out / "model", force=True)
again = DepMicroDiff.load(out / "model")
same = again.impute(table, draws=4, sampler="ddim:15", zeros="auto", seed=0, progress=False)
assert np.array_equal(same.table.counts, result.table.counts)
print(sorted(p.name for p in (out / "model").iterdir()))

# %% [markdown]
# ## Write the outputs
# The imputed table keeps the input's format; which entries were imputed, the spread and the
# dropout probabilities go beside it (side TSVs, or layers of an .h5ad file).

# %%
files = pdm.io.write_imputation(result, out / "imputed.biom", force=True)
files += pdm.io.write_imputation(result, out / "imputed.h5ad", force=True)
print([p.name for p in files])
