"""How much of the metadata's effect conditional generation reproduces, taxon by taxon.

On a simulated table with a planted sample-type effect (``simulate(300, 80, seed=S)``), a generation
model (``generate_fraction=1``) draws one sample per real sample's metadata. Printed, at guidances 1
and 4:

- per taxon, the tumour-minus-normal difference of mean log relative abundance in the generated
  samples against the real ones: correlation r, slope (1 = the full effect, 0 = metadata ignored)
  and a permutation p-value of r (the generated samples' labels permuted);
- ``check_components.py``'s classifiers: the AUROC of a tumour-vs-normal logistic regression fitted
  on the real table and scored on the generated samples (0.5 = metadata ignored), and the
  cross-validated AUROC of telling generated from real samples (0.5 = alike: still realistic);
- the same difference in the latent space, without the sampler and the decoder: the denoiser's own
  estimate (``predict_mean``, nothing observed, each real sample's metadata) against the VAE's latents
  of the real samples (``latent_r``, ``latent_slope``, and each shift's mean absolute size in sd of
  the real latents).

``--held-out`` trains on a random half of the samples and compares with the other half, generated
for their metadata: the model never saw those samples, so memorising earns nothing.

    python inst/scripts/check_metadata_effects.py --seed 0 --dat-steps 1000 --out /tmp/metadata [--held-out] [key=value ...]

Extra ``key=value`` arguments are DepMicroDiff options (e.g. ``d_model=64 metadata_base=true``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from check_components import _tumour_auroc, _two_sample_auroc  # noqa: E402  (this folder is on sys.path when run as a script)

from pydepmicro.cli_model import parse_value
from pydepmicro.datasets import simulate
from pydepmicro.model import DepMicroDiff, _data
from pydepmicro.transforms import preprocess


def _log_scale(counts: np.ndarray) -> np.ndarray:
    """(n_samples, n_taxa) log relative abundance (natural log, x 100 + 1), the benchmark's scale."""
    return preprocess(np.nan_to_num(counts), base=np.e)


def _tumour_minus_normal(x: np.ndarray, tumour: np.ndarray) -> np.ndarray:
    """(n_taxa,) difference of the group means of ``x`` (log scale) between tumour and normal samples."""
    return x[tumour].mean(axis=0) - x[~tumour].mean(axis=0)


@torch.no_grad()
def _latent_shift(model: DepMicroDiff, table, tumour: np.ndarray) -> dict:
    """The denoiser's tumour-minus-normal latent shift against the real latents' (see the module doc)."""
    module = model.module.eval()
    prep = _data.prepare(table, scale=model.hparams["scale"], log_base=model.hparams["log_base"])
    real = module.encode(prep.y, prep.observed).reshape(table.n_samples, -1).numpy()
    empty = torch.zeros_like(prep.y)
    cond, cond_valid = model._condition_tokens(table)
    estimate = module.predict_mean(module.token_condition(empty, empty > 0, cond, cond_valid), model.scheduler(), cond=cond,
                                   cond_valid=cond_valid).reshape(table.n_samples, -1).numpy()
    d_real, d_gen = _tumour_minus_normal(real, tumour), _tumour_minus_normal(estimate, tumour)
    sd = real.std(axis=0)
    return {"latent_r": float(np.corrcoef(d_gen, d_real)[0, 1]), "latent_slope": float(d_gen @ d_real / (d_real @ d_real)),
            "latent_shift_real": float(np.mean(np.abs(d_real) / sd)), "latent_shift_denoiser": float(np.mean(np.abs(d_gen) / sd))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dat-steps", type=int, default=1000)
    ap.add_argument("--out", default="/tmp/metadata")
    ap.add_argument("--permutations", type=int, default=200, help="label permutations of the null")
    ap.add_argument("--held-out", action="store_true",
                    help="train on a random half of the samples; generate for the other half's metadata and compare "
                         "with those real samples, which the model never saw (no credit for memorising)")
    ap.add_argument("options", nargs="*", help="DepMicroDiff options as key=value")
    args = ap.parse_args()
    options = {k: parse_value(v) for k, v in (o.split("=", 1) for o in args.options)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate(300, 80, seed=args.seed)
    table = train = sim.table
    if args.held_out:
        order = np.random.default_rng(args.seed).permutation(table.n_samples)
        half = table.n_samples // 2
        train = table.subset(samples=table.sample_ids[np.sort(order[:half])])
        table = table.subset(samples=table.sample_ids[np.sort(order[half:])])
    is_tumour = (table.sample_meta["sample_type"] == "Primary Tumor").to_numpy()
    real = _tumour_minus_normal(_log_scale(table.counts), is_tumour)
    planted = sim.taxon_effects["sample_type_effect"].to_numpy()
    row = {"seed": args.seed, "dat_steps": args.dat_steps, "held_out": args.held_out, **options,
           "r_real_planted": float(np.corrcoef(real, planted)[0, 1])}
    folder = out / "-".join([f"model-s{args.seed}-d{args.dat_steps}", *(["heldout"] if args.held_out else []),
                             *(f"{k}{v}" for k, v in options.items())])
    if (folder / "config.json").exists():
        model = DepMicroDiff.load(folder, device="cpu")
    else:
        t0 = time.perf_counter()
        model = DepMicroDiff(device="cpu", **options).fit(train, seed=args.seed, progress=False,
                                                          generate_fraction=1.0, dat_steps=args.dat_steps)
        row["fit_seconds"] = time.perf_counter() - t0
        model.save(folder)
    for guidance in (1.0, 4.0):
        synthetic = model.generate(meta=table.sample_meta, seed=args.seed, progress=False, guidance=guidance)
        labels = (synthetic.sample_meta["sample_type"] == "Primary Tumor").to_numpy()
        x = _log_scale(synthetic.counts)  # once per table, not once per permutation
        generated = _tumour_minus_normal(x, labels)
        r = float(np.corrcoef(generated, real)[0, 1])
        # the null: the same generated samples with their labels permuted (r is noisy: about 60 normals)
        rng = np.random.default_rng(0)
        null = np.array([np.corrcoef(_tumour_minus_normal(x, rng.permutation(labels)), real)[0, 1]
                         for _ in range(args.permutations)])
        row[f"r_g{guidance:g}"] = r
        row[f"slope_g{guidance:g}"] = float(generated @ real / (real @ real))
        row[f"null_sd_g{guidance:g}"] = float(null.std())
        row[f"p_g{guidance:g}"] = float((1 + np.sum(null >= r)) / (1 + len(null)))
        row["tumour_auroc_real_cv"], row[f"tumour_auroc_g{guidance:g}"] = _tumour_auroc(table, synthetic)
        # realism beside it: can a classifier tell these samples from the real ones (0.5 = alike)?
        row[f"real_vs_generated_auroc_g{guidance:g}"] = _two_sample_auroc(table, synthetic, args.seed)
    row.update(_latent_shift(model, table, is_tumour))
    print(json.dumps(row), flush=True)
    with open(out / "results.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
