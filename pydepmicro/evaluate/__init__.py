"""Evaluation building blocks of the imputation benchmark (see BENCHMARK.md).

- :mod:`.masks`: draw the 10% masks (P1 paper, P2 leak-free lineage masks), save/load them, and
  hide their entries in the blind (set to 0) or aware (set to NaN) regime.
- :mod:`.metrics`: pooled / per-taxon / per-sample accuracy, false-fill rate, dropout AUROC,
  observed fidelity and interval coverage on the log scale; :func:`summarise` over seeds.
- :mod:`.baselines`: the baseline imputers (zeros, taxon mean, KNN variants, SoftImpute,
  IterativeImputer) and which run in each regime.

All arrays are samples x taxa.
"""

from .baselines import (
    BASELINES,
    baselines_for,
    impute_iterative,
    impute_knn,
    impute_softimpute,
    impute_taxon_mean,
    impute_zeros,
)
from .masks import (
    REGIMES,
    VARIANTS,
    EvalMask,
    apply_mask,
    draw_mask,
    lineage_ancestors,
    lineage_relatives,
    masked_log_inputs,
)
from .metrics import grouped_pcc, imputation_metrics, summarise

__all__ = [
    "BASELINES", "REGIMES", "VARIANTS", "EvalMask", "apply_mask", "baselines_for", "draw_mask", "grouped_pcc",
    "imputation_metrics", "impute_iterative", "impute_knn", "impute_softimpute",
    "impute_taxon_mean", "impute_zeros", "lineage_ancestors", "lineage_relatives", "masked_log_inputs", "summarise",
]

# generation (issue 7): ecological fidelity of synthetic tables and the copula baseline
from .copula import CopulaGenerator
from .ecology import (
    beta_discrepancy,
    classifier_two_sample_test,
    evaluate_generation,
    metrics_frame,
    plot_generation,
    prevalence_correlation,
    sparsity,
    sparsity_deviation,
)

__all__ += [
    "CopulaGenerator", "beta_discrepancy", "classifier_two_sample_test", "evaluate_generation", "metrics_frame",
    "plot_generation", "prevalence_correlation", "sparsity", "sparsity_deviation",
]
