# %% [markdown]
# # Getting tables into pydepmicro
#
# A runnable guide (percent-format script: open it in Jupyter with jupytext, or run it with
# `python vignettes/01_tables.py OUTDIR`). It reads the embedded example cohort, looks at its
# sparsity, moves it between formats, joins metadata the way real projects need, and applies
# the transforms the model works in. The test suite runs it, so it stays true.

# %%
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import pydepmicro as pdm
from pydepmicro.datasets import load_example, simulate
from pydepmicro.transforms import preprocess

out = Path(sys.argv[1] if len(sys.argv) > 1 else "vignette-output")
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The example cohort
# A simulated TCGA-like table (samples x taxa) with sample metadata and a taxonomy. Most entries
# are zero, as in tumour microbiome tables.

# %%
table = load_example()
print(table)
print(table.sample_meta.head())
print(f"{len(table.all_zero_taxa)} taxa never seen; median library size {table.library_sizes.median():.0f}")

# %% [markdown]
# ## Formats
# Every writable format reads back identical: values, ids, metadata and taxonomy.

# %%
for name in ("example.biom", "example.h5ad", "example.tsv"):
    pdm.write_table(table, out / name, force=True)
    assert pdm.read_table(out / name).equals(table)
print(sorted(p.name for p in out.iterdir()))

# %% [markdown]
# ## Metadata joins are explicit
# Samples without metadata are an error by default; `missing="drop"` or `"keep"` says what to do,
# and the warning names them.

# %%
partial = table.sample_meta.iloc[:150]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    kept = pdm.join_metadata(table, partial, missing="drop")
print(kept.n_samples, "samples kept;", caught[0].message)

# %% [markdown]
# ## The model's space
# Relative abundance scaled to 100, then log10(x + 1) (paper eq. 10-11). Zeros stay zeros.

# %%
x = preprocess(table)
prevalence = (table.counts > 0).mean(axis=0)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].hist(x.counts[x.counts > 0].ravel(), bins=40, color="#4477aa")
axes[0].set(xlabel="log10(rel. abundance x 100 + 1), nonzero entries", ylabel="entries")
axes[1].hist(prevalence, bins=20, color="#cc6677")
axes[1].set(xlabel="prevalence per taxon", ylabel="taxa")
fig.tight_layout()
fig.savefig(out / "model_space.png", dpi=100)
print("zero fraction", round(table.zero_fraction, 3), "->", out / "model_space.png")

# %% [markdown]
# ## Simulating with known truth
# `simulate` returns the table, the counts before dropout, which zeros are dropouts, and the planted
# taxon dependencies: the ground truth for imputation and dependency discovery.

# %%
sim = simulate(n_samples=200, n_taxa=40, zero_fraction=0.8, seed=1)
print(sim.table)
print(f"{int(sim.dropout_mask.sum())} dropouts among {int((sim.table.counts == 0).sum())} zeros")
print(sim.edges.head())
assert np.all(sim.table.counts[sim.dropout_mask] == 0)
