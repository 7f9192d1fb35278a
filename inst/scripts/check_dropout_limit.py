"""What limits dropout AUROC (G1): the threshold, or what the model's inputs can tell apart?

Reads a ``depmicro benchmark`` folder (its saved blind P1 model and mask of one cancer and seed),
imputes the masked table again and prints, over the mask's drawn entries (dropouts) and true zeros:

- the calibrated threshold's false-fill, share of dropouts filled and dropout AUROC;
- the same at thresholds set on the mask's own true zeros (false-fill 1-5%): an oracle, which a user
  cannot compute, to show the best a threshold can do with this model's ranking;
- the share of dropouts ranked above the top 1 / 3 / 5% of true zeros by the model's dropout
  probability, and by gradient-boosted stacks fitted on the mask itself (5-fold, folds by sample):
  the probability alone, with the lineage inputs (the parent's unaccounted share, parent present,
  children's total, zero siblings), and with the taxon's prevalence and the sample's richness too.
  The stacks learn from the answers, so they bound what these inputs hold, not what a model gets.

    python inst/scripts/check_dropout_limit.py BENCH_OUT --cancer coad --seed 10 [--data ../shared/data/tcma]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from pydepmicro.benchmark.ablations import ALL_DROPOUTS_THRESHOLD
from pydepmicro.benchmark.run import BenchmarkSettings, _model_estimates
from pydepmicro.datasets import load_tcma
from pydepmicro.evaluate import lineage_ancestors
from pydepmicro.evaluate.masks import EvalMask, masked_log_inputs
from pydepmicro.model import DepMicroDiff
from pydepmicro.nn.vae import TaxonVAE

FALSE_FILLS = (0.01, 0.02, 0.03, 0.04, 0.05)


def _tail(score: np.ndarray, label: np.ndarray) -> list[float]:
    """Share of dropouts above the top 1 / 3 / 5% of true zeros."""
    zeros, drops = score[label == 0], score[label == 1]
    return [float(np.mean(drops > np.quantile(zeros, 1 - q))) for q in (0.01, 0.03, 0.05)]


def _lineage_inputs(x: np.ndarray, table) -> tuple[np.ndarray, np.ndarray]:
    """The VAE's lineage inputs (n, q, 3) and each zero's number of zero siblings (n, q)."""
    ids = [str(t) for t in table.taxa_ids]
    ancestors = lineage_ancestors(table.taxonomy, ids)
    vae = TaxonVAE(vocab=ids, d_model=8, n_heads=1, lineage_inputs=True, ancestors=[ancestors[i] for i in ids])
    index = vae.index(ids)
    feats = vae.lineage_features(torch.as_tensor(x, dtype=torch.float32), index).numpy()
    parent = vae.table_parents(index).numpy()
    zero = x == 0
    siblings = np.zeros_like(x)
    for j in np.flatnonzero(parent >= 0):
        siblings[:, j] = zero[:, parent == parent[j]].sum(1)
    return feats, siblings


def saved_blind(description: str, default_seed: int, needs: str = "models/ and masks/", variant: str = "p1"):
    """The command line (OUT --cancer --seed --data) and what it names: the cancer's table, the saved
    mask of ``variant``, the truth and the blind inputs on the natural-log scale (n, q), the table the
    benchmark fed the model, and its saved blind model. Also used by rescore_calibration.py and
    check_p2_fill.py."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("out", type=Path, help=f"a depmicro benchmark folder with {needs}")
    ap.add_argument("--cancer", default="coad")
    ap.add_argument("--seed", type=int, default=default_seed)
    ap.add_argument("--data", default="../shared/data/tcma")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    table = load_tcma(args.cancer, args.data)
    mask = EvalMask.load(args.out / "masks" / f"{args.cancer}-{variant}-s{args.seed}.npz")
    truth, x = masked_log_inputs(table, mask, "blind", base=np.e)
    fed = table.with_counts(np.power(np.e, x) - 1.0)  # as the benchmark feeds the model
    model = DepMicroDiff.load(args.out / "models" / f"{args.cancer}-blind-{variant}-s{args.seed}", device="cpu")
    return args, table, mask, truth, x, fed, model


def main() -> None:
    args, table, mask, _, x, fed, model = saved_blind(__doc__.split("\n\n")[0], default_seed=10)
    calibrated = model.dropout_threshold()
    # every zero gets a value (the zeros_all_dropouts threshold), so any threshold can be applied afterwards
    result = model.impute(fed, draws=1, sampler="ddim:10", dropout_threshold=ALL_DROPOUTS_THRESHOLD, seed=args.seed,
                          progress=False)
    estimate = _model_estimates(result, fed, BenchmarkSettings(), 100.0)[0]
    prob = np.nan_to_num(result.dropout_prob, nan=0.0)
    drawn, zero = mask.drawn, table.counts == 0
    scored = drawn | zero
    label = drawn[scored].astype(int)
    p, value = prob[scored], estimate[scored]

    print(f"{args.out} {args.cancer} seed {args.seed}: {int(drawn.sum())} dropouts, {int(zero.sum())} true zeros; "
          f"dropout-probability AUROC {roc_auc_score(label, p):.4f}")
    oracle = [np.quantile(prob[zero], 1 - f) for f in FALSE_FILLS]
    for name, thr in [("calibrated", calibrated)] + [(f"oracle {f:.0%}", t) for f, t in zip(FALSE_FILLS, oracle)]:
        print(f"  {name:<11} threshold {thr:.3f}: false-fill {np.mean(prob[zero] > thr):.3f}, "
              f"dropouts filled {np.mean(prob[drawn] > thr):.3f}, dropout AUROC "
              f"{roc_auc_score(label, np.where(p > thr, value, 0.0)):.4f}")

    feats, siblings = _lineage_inputs(x, table)
    logit = np.log(np.clip(prob, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(prob, 1e-6, 1 - 1e-6))
    prevalence = np.broadcast_to((x > 0).mean(0), x.shape)
    richness = np.broadcast_to((x > 0).sum(1)[:, None], x.shape)
    lineage = [feats[..., 0], feats[..., 1], feats[..., 2], siblings]
    stacks = {"probability": [logit], "+ lineage": [logit, *lineage],
              "+ lineage, prevalence, richness": [logit, *lineage, prevalence, richness]}
    print(f"  share of dropouts above the top 1/3/5% of true zeros: model {np.round(_tail(p, label), 3).tolist()}")
    groups = np.nonzero(scored)[0]
    for name, columns in stacks.items():
        features = np.column_stack([c[scored] for c in columns])
        score = np.zeros(len(label))
        for train, test in GroupKFold(5).split(features, label, groups):
            fitted = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
            score[test] = fitted.fit(features[train], label[train]).predict_proba(features[test])[:, 1]
        print(f"  stack on the mask, {name:<31}: AUROC {roc_auc_score(label, score):.4f}, "
              f"above the top 1/3/5% {np.round(_tail(score, label), 3).tolist()}")


if __name__ == "__main__":
    main()
