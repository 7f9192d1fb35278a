"""G1's dropout AUROC on COAD: does a larger VAE, longer training or an ensemble rank dropouts better?

Until ``524488f`` the dropout decision of ``impute(zeros="auto")`` was the VAE pass's presence
probability (``estimate="vae"`` keeps it; the default now judges zeros with the denoiser's pass, whose
presence probability decodes the denoiser's latent with the same VAE decoder). This script
trains only the VAE, as the benchmark does for a blind P1 mask: pretrained on the other TCMA cancers
(:meth:`~pydepmicro.model.DepMicroDiff.pretrain_vae`, seeded with the mask's seed), then fine-tuned on
the masked table by fit's own VAE phase (``DepMicroDiff._fit_vae``, same split and options). It scores
the presence probability of the mask's dropouts (drawn entries) against its true zeros, in the
samples left with reads, without a threshold:

- presence AUROC;
- the share of dropouts ranked above the top 1 / 3 / 5% of true zeros. At 5% false-fill (G1's
  limit) 0.928 and 0.932 of them scored dropout AUROC 0.946 and 0.949 on COAD's selection masks, with
  the threshold set on the mask's own true zeros (docs/benchmark/README.md, "Lineage inputs"): G1's
  0.95 needs more than that, and more again at the threshold fit calibrates.

With ``--ensemble N`` the presence probabilities of N VAEs (pretraining and fine-tuning seeds
``seed + 1000 k``) are averaged. Use the selection masks (seeds 10, 11), never the benchmark's 0-4.

    python inst/scripts/check_vae_ranking.py --cancer coad --seeds 10 11 [--set vae_d_model=64]
        [--pretrain-steps 2000] [--vae-steps 2000] [--max-drop 0.3] [--ensemble 2] [--data ../shared/data/tcma]

Prints one line per mask. A pretraining plus fine-tuning takes about 8 minutes at one CPU thread.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from check_dropout_limit import _tail  # the same script folder
from sklearn.metrics import roc_auc_score

from pydepmicro.benchmark.run import BenchmarkSettings, load_data
from pydepmicro.cli_model import _hparams
from pydepmicro.evaluate import draw_mask
from pydepmicro.evaluate.masks import masked_log_inputs
from pydepmicro.model import DepMicroDiff, _data
from pydepmicro.model._model import _seed_everything, _split
from pydepmicro.model._train import TrainOptions


def vae_presence(fed, pool, hparams: dict, *, seed: int, pretrain_steps: int, vae_steps: int,
                 max_drop: float) -> np.ndarray:
    """Presence probability (n, q) of the VAE pass on ``fed``, after pretraining on ``pool`` and fit's
    VAE phase (fit's defaults but ``vae_steps`` and ``max_drop``)."""
    model = DepMicroDiff(device="cpu", **hparams)
    if pretrain_steps:
        model.pretrain_vae(pool, steps=pretrain_steps, seed=seed, progress=False)
    _seed_everything(seed)
    h = model.hparams
    prep = _data.prepare(fed, scale=h["scale"], log_base=h["log_base"])
    train, val = _split(_data.training_rows(fed), 0.1, seed)
    options = TrainOptions(steps=vae_steps, max_drop=max_drop, log_base=h["log_base"])
    vae, index, _, _ = model._fit_vae(fed, prep.y, prep.observed, train, val, options, seed=seed)
    with torch.no_grad():
        return vae.decode(vae.encode(prep.y, prep.observed, index)[0], index)["presence_prob"].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cancer", default="coad")
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="DepMicroDiff hyperparameter, e.g. vae_d_model=64 (repeatable)")
    ap.add_argument("--pretrain-steps", type=int, default=2000)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--max-drop", type=float, default=0.3, help="fine-tuning's dropout rate, up to (fit's max_drop)")
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--data", default="../shared/data/tcma")
    args = ap.parse_args()
    if args.ensemble < 1 or args.vae_steps < 1 or args.pretrain_steps < 0 or not 0 <= args.max_drop <= 1:
        ap.error("--ensemble and --vae-steps must be >= 1, --pretrain-steps >= 0 (0: no pretraining), "
                 "--max-drop in [0, 1]")
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    hparams = _hparams(args.settings)
    settings = BenchmarkSettings(cancers=(args.cancer,))
    targets, pool = load_data(args.data, settings)
    table, others = targets[args.cancer], [t for name, t in pool.items() if name != args.cancer]
    for seed in args.seeds:
        start = time.perf_counter()
        mask = draw_mask(table, fraction=settings.fraction, seed=seed, variant="p1")  # the benchmark's P1 mask
        truth, x = masked_log_inputs(table, mask, "blind", base=np.e)
        fed = table.with_counts(np.power(np.e, x) - 1.0)  # as the benchmark feeds the model
        prob = np.mean([vae_presence(fed, others, hparams, seed=seed + 1000 * k, pretrain_steps=args.pretrain_steps,
                                     vae_steps=args.vae_steps, max_drop=args.max_drop)
                        for k in range(args.ensemble)], axis=0)
        has_reads = (np.nansum(fed.counts, axis=1) > 0)[:, None]
        dropped, true_zero = mask.drawn & has_reads, (truth == 0) & ~mask.hidden & has_reads
        score = np.r_[prob[dropped], prob[true_zero]]
        label = np.r_[np.ones(int(dropped.sum())), np.zeros(int(true_zero.sum()))]
        tails = " / ".join(f"{v:.3f}" for v in _tail(score, label))
        print(f"{args.cancer} seed {seed} {' '.join(args.settings) or 'defaults'} pretrain {args.pretrain_steps} "
              f"fine-tune {args.vae_steps} max_drop {args.max_drop} ensemble {args.ensemble}: presence AUROC "
              f"{roc_auc_score(label, score):.4f}, dropouts above the top 1/3/5% of true zeros {tails} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
