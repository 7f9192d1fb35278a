# %% [markdown]
# # Synthetic microbiome samples with DepMicroDiff
#
# A runnable guide (percent-format script: open it in Jupyter with jupytext, or run it with
# `python vignettes/03_generation.py OUTDIR`). It trains a model on the embedded example cohort,
# draws synthetic samples (with and without metadata), scores them against the real table with the
# ecological fidelity metrics, and puts a parametric baseline (a zero-inflated Gaussian copula in the
# style of MIDASim) beside them. The test suite runs it, so it stays true.
#
# The guide trains a **small model for few steps** so that it runs in a minute or two on a laptop
# CPU; its samples are far easier to tell from real ones than those of a model trained with the
# defaults (see `docs/generation/summary.md` for the full-size numbers, 3 seeds). For real work:
# `depmicro train table.biom --meta meta.tsv -o model/` then `depmicro generate --model model/ -n 500
# -o synthetic.biom`.

# %%
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd

from pydepmicro.datasets import load_example
from pydepmicro.evaluate.copula import CopulaGenerator
from pydepmicro.evaluate.ecology import evaluate_generation, plot_generation
from pydepmicro.io import write_table
from pydepmicro.model import DepMicroDiff

out = Path(sys.argv[1] if len(sys.argv) > 1 else "vignette-output")
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Train
# `fit` trains the model for imputation and, on a share of the samples (`generate_fraction`, 0.1 by
# default), for generation: those samples are hidden entirely, so the denoiser learns to draw a
# whole sample from nothing but (for half of them) its metadata. `generate_fraction=1.0`, used here,
# makes a generation model: all of the denoiser's training goes to whole samples (such a model
# cannot impute; train a second one for that). After training, the decoder is calibrated on the
# complete training samples: per-taxon presence offsets so decoded real latents reproduce each
# taxon's prevalence, and the scatter of abundances around the decoded value.

# %%
table = load_example()
print(table)
model = DepMicroDiff(d_model=32, n_layers=2, vae_d_model=32, n_blocks=3, dependency="ftest", device="cpu")
model.fit(table, vae_steps=300, dat_steps=400, generate_fraction=1.0, seed=0, progress=False)

# %% [markdown]
# ## Generate
# Each synthetic sample is drawn with nothing observed; the decoder then draws a hard 0/1 presence
# mask per taxon (Bernoulli, not a 0.5 threshold), so zeros are sampled like real ones. Read depths
# are drawn from the training table's. With `meta`, each sample is conditioned on one metadata row.

# %%
synthetic = model.generate(200, seed=1, progress=False)
print(synthetic)
tumour_rows = table.sample_meta.iloc[:50].copy()
tumour_rows.index = [f"conditioned_{i}" for i in range(50)]
conditioned = model.generate(meta=tumour_rows, seed=1, progress=False)
print(f"conditioned on metadata: {conditioned.n_samples} samples named {conditioned.sample_ids[0]}, ...")
write_table(synthetic, out / "synthetic.tsv", force=True)

# %% [markdown]
# ## How real do they look?
# `evaluate_generation` computes sparsity deviation, prevalence correlation, Bray-Curtis and UniFrac
# discrepancies (PERMANOVA R² beside a real-vs-real floor) and a classifier two-sample test (AUROC of
# telling real from synthetic; 0.5 = indistinguishable). The copula baseline fits the same table.

# %%
copula = CopulaGenerator().fit(table).sample(200, seed=1)
rows = {}
for name, synth in (("DepMicroDiff", synthetic), ("copula", copula)):
    report = evaluate_generation(table, synth, seed=0, permutations=99, n_splits=3, classifier_splits=0)
    rows[name] = {
        "sparsity (real %.3f)" % report["sparsity"]["real"]: report["sparsity"]["synthetic"],
        "prevalence Pearson r": report["prevalence"]["pearson"],
        "classifier AUROC": report["classifier"]["auroc"],
        "Bray-Curtis R²": report["beta"]["braycurtis"]["value"]["R2"],
        "Bray-Curtis R², real vs real": report["beta"]["braycurtis"]["floor"]["R2"],
    }
summary = pd.DataFrame(rows)
print(summary.round(4).to_string())
summary.to_csv(out / "generation_metrics.csv")

# %% [markdown]
# The overview figure: prevalence of each taxon (real against synthetic), per-sample sparsity, mean
# log abundance and a Bray-Curtis PCoA of real and synthetic samples together.

# %%
plot_generation(table, synthetic, out / "generation.png", seed=0)
print("wrote", out / "synthetic.tsv", "and", out / "generation.png")
