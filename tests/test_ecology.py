"""Ecological fidelity metrics, the copula baseline, UniFrac trees and the generation CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pydepmicro.cli import cli
from pydepmicro.datasets import load_example
from pydepmicro.errors import (
    EmptyTableError,
    IdMismatchError,
    InvalidOptionError,
    InvalidValueError,
    TooFewSamplesError,
)
from pydepmicro.evaluate._tree import read_newick_tree, table_tree, tree_from_taxonomy, tree_from_tcma_taxonomy
from pydepmicro.evaluate.copula import CopulaGenerator, _bvn_cdf, _tetrachoric
from pydepmicro.evaluate.ecology import (
    beta_discrepancy,
    classifier_two_sample_test,
    evaluate_generation,
    metrics_frame,
    plot_generation,
    prevalence_correlation,
    sparsity,
    sparsity_deviation,
)
from pydepmicro.table import MicrobiomeTable

REPO = Path(__file__).resolve().parents[1]

FAST = {"permutations": 49, "n_splits": 2, "classifier": "logistic", "classifier_splits": 1, "folds": 3}


@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.fixture(scope="module")
def halves(example):
    """Two random halves of the example: draws of one distribution."""
    idx = np.random.default_rng(0).permutation(example.n_samples)
    h = example.n_samples // 2
    return example.subset(samples=example.sample_ids[idx[:h]]), example.subset(samples=example.sample_ids[idx[h:]])


def _renamed(table, prefix="copy_"):
    return MicrobiomeTable(table.counts.copy(), [prefix + s for s in table.sample_ids], table.taxa_ids,
                           taxonomy=table.taxonomy)


# ---------------------------------------------------------------------- metrics


def test_identical_tables_give_zero_discrepancy(example):
    rep = evaluate_generation(example, _renamed(example), metrics=("braycurtis", "unweighted_unifrac"), **FAST)
    assert rep["sparsity"]["absolute"] == 0 and rep["sparsity"]["relative"] == 0
    assert rep["prevalence"]["pearson"] == pytest.approx(1.0) and rep["prevalence"]["mae"] == 0
    for metric in ("braycurtis", "unweighted_unifrac"):
        v = rep["beta"][metric]["value"]
        assert v["gap"] == pytest.approx(0, abs=1e-12)
        assert v["centroid"] == pytest.approx(0, abs=1e-6)
        assert v["R2"] < 1e-3 and v["p"] > 0.5


def test_real_vs_real_halves_near_floor(halves):
    a, b = halves
    rep = evaluate_generation(a, b, metrics=("braycurtis",), **FAST)
    assert rep["sparsity"]["relative"] < 0.05
    assert rep["prevalence"]["pearson"] > 0.95
    assert abs(rep["beta"]["braycurtis"]["value"]["gap"]) < 0.03
    assert 0.3 < rep["classifier"]["auroc"] < 0.7
    assert rep["tree"] == "not needed"
    frame = metrics_frame(rep)
    assert {"group", "metric", "value", "matched", "floor"} == set(frame.columns)
    assert frame.loc[frame.metric == "R2", "floor"].notna().all()


def test_zeros_filled_in_is_detected(example):
    filled = example.with_counts(np.where(example.counts == 0, 1.0, example.counts))
    dev = sparsity_deviation(example, filled)
    assert dev["synthetic"] == 0 and dev["relative"] == pytest.approx(1.0)
    assert dev["absolute"] == pytest.approx(example.zero_fraction)
    c2st = classifier_two_sample_test(example, filled, classifier="logistic", folds=3, n_splits=0)
    assert c2st["auroc"] > 0.95
    assert prevalence_correlation(example, filled)["mae"] == pytest.approx(example.zero_fraction)


def test_forest_classifier(halves, example):
    a, b = halves
    filled = b.with_counts(np.where(b.counts == 0, 1.0, b.counts))
    assert classifier_two_sample_test(a, filled, n_splits=0, folds=3)["auroc"] > 0.95


def test_sparsity_and_prevalence_on_arrays():
    x = np.array([[0, 1, 2], [3, 0, 0], [1, 1, 0], [0, 1, 5.0]])
    assert sparsity(x) == pytest.approx(5 / 12)
    assert prevalence_correlation(x, x[::-1])["pearson"] == pytest.approx(1.0)
    assert np.isnan(prevalence_correlation(np.ones((3, 3)), np.ones((3, 3)))["pearson"])


def test_taxa_are_aligned_by_id(example):
    shuffled = example.subset(taxa=example.taxa_ids[::-1])
    rep = sparsity_deviation(example, shuffled)
    assert rep["per_taxon_mae"] == 0


def test_all_zero_samples_convention():
    from pydepmicro.evaluate.ecology import _distances

    x = np.array([[0, 0.0], [0, 0], [1, 1], [2, 0]])
    d = _distances(x, "braycurtis", ["a", "b"])
    assert d[0, 1] == 0 and d[0, 2] == 1 and d[2, 3] == pytest.approx(0.5)


def test_bad_inputs_raise_clear_errors(example):
    with pytest.raises(IdMismatchError, match="not in the synthetic table.*Fix"):
        sparsity_deviation(example, example.subset(taxa=example.taxa_ids[:10]))
    with pytest.raises(IdMismatchError, match="real has 3 taxa"):
        sparsity_deviation(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(EmptyTableError):
        sparsity_deviation(np.ones((0, 3)), np.ones((4, 3)))
    with pytest.raises(InvalidValueError, match="negative"):
        sparsity_deviation(-np.ones((4, 3)), np.ones((4, 3)))
    with pytest.raises(InvalidValueError, match="NaN"):
        prevalence_correlation(np.full((4, 3), np.nan), np.ones((4, 3)))
    with pytest.raises(TooFewSamplesError):
        beta_discrepancy(np.ones((3, 3)), np.ones((4, 3)))
    with pytest.raises(InvalidOptionError, match="needs a tree"):
        beta_discrepancy(example, example, metric="weighted_unifrac")
    with pytest.raises(InvalidOptionError, match="unknown"):
        evaluate_generation(example, example, metrics=("jaccard",))
    with pytest.raises(InvalidOptionError, match="n_splits"):
        evaluate_generation(example, example, n_splits=0)


def test_unifrac_skipped_without_tree():
    rng = np.random.default_rng(0)
    x = rng.poisson(2, (20, 6)).astype(float)
    rep = evaluate_generation(x, x[::-1].copy(), **FAST)
    assert "no tree" in rep["beta"]["weighted_unifrac"]["skipped"]
    assert "braycurtis" in rep["beta"] and "skipped" not in rep["beta"]["braycurtis"]
    assert (metrics_frame(rep).metric == "skipped").sum() == 2


def test_plot(example, halves, tmp_path):
    a, b = halves
    plot_generation(a, b, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000


# ---------------------------------------------------------------------- trees


def test_weighted_unifrac_matches_hand_value():
    from skbio import TreeNode

    from pydepmicro.evaluate.ecology import _distances

    tree = TreeNode.read(["((a:1,b:1)x:1,c:2)root;"])
    x = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    assert _distances(x, "weighted_unifrac", ["a", "b", "c"], tree)[0, 1] == pytest.approx(0.7)
    assert _distances(x * 1e4, "weighted_unifrac", ["a", "b", "c"], tree)[0, 1] == pytest.approx(0.7)


def test_tree_from_taxonomy_nested_taxa():
    tax = pd.DataFrame({"Kingdom": ["Bacteria"] * 4, "Phylum": ["P1", "P1", "P1", "P2"],
                        "Genus": ["G1", "G1", np.nan, "G2"], "Species": ["G1 a", np.nan, np.nan, "G2 b"]},
                       index=["sp_a", "gen_1", "phy_1", "sp_b"])
    tree = tree_from_taxonomy(tax, tax.index)
    assert sorted(t.name for t in tree.tips()) == sorted(tax.index)
    assert len(tree.children) <= 2
    assert tree.find("gen_1").length == 0  # nested genus: zero-length tip under its node
    assert tree.find("sp_a").length > 0 and tree.find("sp_b").length > 0
    d = tree.find("sp_a").distance(tree.find("gen_1"))
    assert d == pytest.approx(tree.find("sp_a").length)


def test_newick_internal_taxon_and_missing_taxa(tmp_path):
    path = tmp_path / "t.nw"
    path.write_text("((a:1,b:1)G:1,(c:1,d:1)H:2)root;\n")
    tree = read_newick_tree(path, ["a", "b", "G", "c"])
    assert sorted(t.name for t in tree.tips()) == ["G", "a", "b", "c"]
    assert tree.find("G").length == 0
    with pytest.raises(IdMismatchError, match="lacks 1 .*'zz'"):
        read_newick_tree(path, ["a", "zz"])
    bad = tmp_path / "bad.nw"
    bad.write_text("((a:1,b:1;")
    with pytest.raises(Exception, match="Newick|tree"):
        read_newick_tree(bad, ["a"])


def test_table_tree_from_example(example):
    tree, why = table_tree(example)
    assert tree is not None and "taxonomy" in why
    assert tree.count(tips=True) == example.n_taxa
    no_tax = MicrobiomeTable(example.counts, example.sample_ids, example.taxa_ids)
    assert table_tree(no_tax)[0] is None


def test_tcma_tree(tcma_root):
    from pydepmicro.datasets import load_tcma

    coad = load_tcma("coad", tcma_root)
    tree = tree_from_tcma_taxonomy(tcma_root / "taxonomy", coad.taxa_ids)
    assert sorted(t.name for t in tree.tips()) == sorted(coad.taxa_ids)
    assert tree.find("848").length == 0  # Fusobacterium (genus) has species features below it
    assert tree.find("851").length > 0  # F. nucleatum
    assert tree.find("2").length == 0  # Bacteria (superkingdom) holds everything
    with pytest.raises(IdMismatchError, match="lineage table lacks"):
        tree_from_tcma_taxonomy(tcma_root / "taxonomy", ["2", "999999999"])


# ---------------------------------------------------------------------- copula


def test_bvn_cdf_matches_scipy():
    from scipy.stats import multivariate_normal

    for h, k, r in [(0, 0, 0.5), (0.3, -1, -0.4), (-1.5, -0.2, 0.9), (2, 1, 0.0), (1, 1, 0.99)]:
        exact = multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([h, k])
        assert float(_bvn_cdf(h, k, r)) == pytest.approx(exact, abs=1e-6)


def test_tetrachoric_recovers_latent_correlation():
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=20000)
    presence = z < np.array([0.3, -0.5])
    assert _tetrachoric(presence)[0, 1] == pytest.approx(0.6, abs=0.05)


def test_copula_reproduces_prevalence_and_sparsity(example):
    gen = CopulaGenerator().fit(example)
    syn = gen.sample(400, seed=3)
    assert isinstance(syn, MicrobiomeTable) and syn.shape == (400, example.n_taxa)
    assert list(syn.taxa_ids) == list(example.taxa_ids) and syn.sample_ids[0] == "copula_00001"
    assert syn.taxonomy is not None
    assert prevalence_correlation(example, syn)["pearson"] > 0.95
    assert sparsity_deviation(example, syn)["absolute"] < 0.03
    lib = syn.library_sizes.to_numpy()
    assert lib.min() >= example.library_sizes.min() - 1e-6  # resampled real library sizes


def test_copula_seeds_repeatable(example):
    gen = CopulaGenerator().fit(example)
    a, b, c = gen.sample(30, seed=7), gen.sample(30, seed=7), gen.sample(30, seed=8)
    assert np.array_equal(a.counts, b.counts) and not np.array_equal(a.counts, c.counts)
    r = CopulaGenerator(round_counts=True).fit(example).sample(30, seed=1).counts
    assert np.array_equal(r, np.round(r)) and ((r == 0) | (r >= 1)).all()


def test_copula_bad_inputs(example):
    with pytest.raises(InvalidOptionError, match="not fitted"):
        CopulaGenerator().sample(5)
    with pytest.raises(InvalidOptionError, match="positive integer"):
        CopulaGenerator().fit(example).sample(0)
    with pytest.raises(EmptyTableError, match="all zero"):
        CopulaGenerator().fit(np.zeros((5, 3)))
    with pytest.raises(InvalidValueError):
        CopulaGenerator().fit(-np.ones((5, 3)))
    # constant taxa (always or never present) stay deterministic
    x = np.c_[np.ones(10), np.zeros(10), np.arange(10.0)]
    syn = CopulaGenerator().fit(x).sample(50, seed=0).counts
    assert (syn[:, 0] > 0).all() and (syn[:, 1] == 0).all()


def test_copula_tcma_coad(tcma_root):
    from pydepmicro.datasets import load_tcma

    coad = load_tcma("coad", tcma_root)
    syn = CopulaGenerator().fit(coad).sample(coad.n_samples, seed=0)
    assert prevalence_correlation(coad, syn)["pearson"] > 0.95
    assert sparsity_deviation(coad, syn)["relative"] < 0.05


# ---------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path):
    real = str(REPO / "inst" / "extdata" / "example.biom")
    syn = str(tmp_path / "syn.tsv")
    runner = CliRunner()
    res = runner.invoke(cli, ["simulate-copula", real, "-n", "120", "-o", syn, "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert "120 samples x 60 taxa" in res.output
    again = runner.invoke(cli, ["simulate-copula", real, "-o", syn])
    assert again.exit_code == 2 and "output exists" in again.output
    out = tmp_path / "eval"
    args = ["evaluate-generation", real, syn, "-o", str(out), "--permutations", "19", "--splits", "2",
            "--classifier", "logistic"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["n_synthetic"] == 120 and "taxonomy" in rep["tree"]
    assert rep["prevalence"]["pearson"] > 0.9
    assert "skipped" not in rep["beta"]["weighted_unifrac"]
    tsv = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert {"sparsity", "braycurtis", "weighted_unifrac", "classifier"} <= set(tsv.group)
    assert (out / "generation.png").stat().st_size > 10_000
    assert runner.invoke(cli, args).exit_code == 2  # no overwrite without --force
    assert runner.invoke(cli, args + ["--force", "--no-unifrac"]).exit_code == 0


def test_cli_mismatched_taxa_one_line(tmp_path):
    real = str(REPO / "inst" / "extdata" / "example.biom")
    other = tmp_path / "other.tsv"
    from pydepmicro.io import write_table

    write_table(MicrobiomeTable(np.ones((5, 3)), [f"s{i}" for i in range(5)], ["ta", "tb", "tc"]), other)
    res = CliRunner().invoke(cli, ["evaluate-generation", real, str(other), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "real taxa are not in the synthetic table" in res.output and "Fix:" in res.output
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_cli_tcma_taxonomy(tmp_path, tcma_root):
    from pydepmicro.datasets import load_tcma
    from pydepmicro.io import write_table

    root = tcma_root
    coad = load_tcma("coad", root, with_metadata=False)
    real = str(tmp_path / "coad80.tsv")  # a subset keeps UniFrac fast
    write_table(coad.subset(samples=coad.sample_ids[:80]), real)
    syn = str(tmp_path / "syn.tsv")
    runner = CliRunner()
    assert runner.invoke(cli, ["simulate-copula", real, "-n", "60", "-o", syn]).exit_code == 0
    res = runner.invoke(cli, ["evaluate-generation", real, syn, "-o", str(tmp_path / "e"), "--tcma-taxonomy",
                              str(root / "taxonomy"), "--permutations", "9", "--splits", "1",
                              "--classifier", "logistic"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert "TCMA lineage" in rep["tree"] and "skipped" not in rep["beta"]["unweighted_unifrac"]
