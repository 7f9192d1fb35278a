"""Tests of pydepmicro.dependency (Dep = C_dir OR C_mi), its plots and ``depmicro deps``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pydepmicro.datasets import simulate
from pydepmicro.dependency import (
    DependencyResult,
    InvalidOptionError,
    TooFewSamplesError,
    benjamini_hochberg,
    dependency_matrix,
    directional_tests,
    discretize,
    mutual_information_tests,
)
from pydepmicro.errors import DepMicroError, EmptyTableError
from pydepmicro.table import MicrobiomeTable
from pydepmicro.transforms import preprocess


@pytest.fixture(scope="module")
def sim():
    return simulate(400, 40, seed=1)


@pytest.fixture(scope="module")
def sim_result(sim) -> DependencyResult:
    return dependency_matrix(sim.table, n_permutations=200)


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n1, n0 = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _permute_each_taxon(table: MicrobiomeTable, seed: int) -> MicrobiomeTable:
    rng = np.random.default_rng(seed)
    counts = table.counts.copy()
    for j in range(counts.shape[1]):
        counts[:, j] = counts[rng.permutation(counts.shape[0]), j]
    return table.with_counts(counts)


# ---------------------------------------------------------------------- recovery and the null


def test_recovers_planted_dependencies(sim, sim_result):
    truth = sim.adjacency.to_numpy()
    truth = truth | truth.T
    ids = list(sim.table.taxa_ids)
    for test in ("ftest", "mi"):
        rows = sim_result.tests[sim_result.tests["test"] == test]
        labels = np.array([truth[ids.index(a), ids.index(b)] for a, b in zip(rows["source"], rows["target"])])
        assert _auc(-rows["log10_p"].to_numpy(), labels) > 0.75, test
    dep = sim_result.dep.to_numpy()
    iu = np.triu_indices(len(ids), 1)
    called, planted = dep[iu], truth[iu]
    recall = (called & planted).sum() / planted.sum()
    precision = (called & planted).sum() / called.sum()
    base_rate = planted.mean()
    assert recall >= 0.5
    assert precision >= 3 * base_rate  # far above chance (about 5% of pairs are planted)
    assert (sim_result.dep.to_numpy() == sim_result.dep.to_numpy().T).all()  # undirected tests only
    assert not np.diag(sim_result.dep.to_numpy()).any()


def test_null_share_of_called_pairs_is_small(sim):
    null = _permute_each_taxon(sim.table, seed=7)
    result = dependency_matrix(null, n_permutations=200)
    for test, rows in result.tests.groupby("test"):
        assert (rows["q"] < 0.05).mean() <= 0.05, test
    # MI permutation p-values are valid: roughly uniform under the null
    mi = mutual_information_tests(null, n_permutations=99, p_value="permutation")
    assert 0.01 <= (mi.tests["p"] < 0.1).mean() <= 0.2


# ---------------------------------------------------------------------- exact agreement with references


def test_f_statistic_matches_statsmodels(sim):
    import statsmodels.api as sm

    table = sim.table
    result = directional_tests(table, covariates=["sample_type", "age"], ftest_p_value="f")
    values = preprocess(table.counts)
    meta = table.sample_meta
    base = np.column_stack([
        np.ones(table.n_samples), np.log(table.library_sizes.to_numpy()),
        (meta["sample_type"] == "Solid Tissue Normal").to_numpy(float), meta["age"].to_numpy(float),
    ])
    ids = list(table.taxa_ids)
    rows = result.tests.sort_values("p").iloc[[0, 5, 200]]
    for row in rows.itertuples():
        i, j = ids.index(row.source), ids.index(row.target)
        restricted = sm.OLS(values[:, i], base).fit()
        full = sm.OLS(values[:, i], np.column_stack([base, values[:, j]])).fit()
        f, p, df = full.compare_f_test(restricted)
        assert row.statistic == pytest.approx(f, rel=1e-8)
        assert row.p == pytest.approx(p, rel=1e-6, abs=1e-300)
        assert df == 1
    # the default keeps the statistic and takes p from the permutation moments of r^2
    default = directional_tests(table, covariates=["sample_type", "age"])
    pd.testing.assert_series_equal(default.tests["statistic"], result.tests["statistic"])
    assert not np.allclose(default.tests["p"], result.tests["p"])


def test_permutation_moment_p_values_match_permutations():
    from pydepmicro.dependency._linear import f_from_r, permutation_moment_p

    rng = np.random.default_rng(3)
    n = 200
    x, y = (np.where(rng.random(n) < 0.08, rng.lognormal(size=n), 0.0) for _ in range(2))
    x, y = x - x.mean(), y - y.mean()
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    null = np.abs(np.array([x @ y[rng.permutation(n)] for _ in range(40_000)]))
    r_obs = np.quantile(null, 0.995)  # true two-sided p = 0.005
    r = np.array([[np.nan, r_obs], [r_obs, np.nan]])
    df2 = np.full((2, 2), n - 2.0)
    p_moments, _ = permutation_moment_p(r, df2, np.array([(x**4).sum(), (y**4).sum()]))
    _, p_f = f_from_r(r, df2)
    assert 0.0015 < p_moments[0, 1] < 0.015  # within about 3x of the truth
    assert p_f[0, 1] < 0.0005  # normal theory: an order of magnitude too small
    # for normal data the two agree
    x, y = rng.normal(size=n), rng.normal(size=n)
    x, y = x - x.mean(), y - y.mean()
    a4 = np.array([(x**4).sum() / (x @ x) ** 2, (y**4).sum() / (y @ y) ** 2])
    r = np.full((2, 2), 0.2)
    assert permutation_moment_p(r, df2, a4)[0][0, 1] == pytest.approx(f_from_r(r, df2)[1][0, 1], rel=0.15)


def test_mi_matches_sklearn_on_the_discretised_values(sim):
    from sklearn.metrics import mutual_info_score

    table = sim.table
    assert (table.library_sizes > 0).all()
    states = discretize(table, n_bins=3)
    assert set(np.unique(states.to_numpy())) <= {0, 1, 2, 3}
    assert ((states.to_numpy() == 0) == (table.counts == 0)).all()  # zero is its own state
    result = mutual_information_tests(table, p_value="chi2", strata=1)
    rows = result.tests.sample(20, random_state=0)
    for row in rows.itertuples():
        expected = mutual_info_score(states[row.source], states[row.target])
        assert row.statistic == pytest.approx(expected, abs=1e-12)
    # conditional MI: the sample-weighted MI within library-size strata
    strata = pd.qcut(table.library_sizes.to_numpy(), 3, labels=False)
    conditional = mutual_information_tests(table, p_value="chi2", strata=3)
    for row in conditional.tests.sample(5, random_state=1).itertuples():
        a, b = states[row.source].to_numpy(), states[row.target].to_numpy()
        expected = sum((strata == s).sum() * mutual_info_score(a[strata == s], b[strata == s]) for s in range(3))
        assert row.statistic == pytest.approx(expected / len(a), abs=1e-12)


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).random(200) ** 3
    assert np.allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])
    with_nan = np.append(p, np.nan)
    assert np.isnan(benjamini_hochberg(with_nan)[-1])


def test_permutation_p_values_are_valid_and_reproducible(sim):
    table = sim.table.subset(taxa=sim.table.taxa_ids[:12])
    a = mutual_information_tests(table, n_permutations=49, p_value="permutation", seed=3, min_nonzero=5)
    b = mutual_information_tests(table, n_permutations=49, p_value="permutation", seed=3, min_nonzero=5,
                                 batch_size=7)
    assert a.tests["p"].between(1 / 50, 1).all()
    pd.testing.assert_frame_equal(a.tests, b.tests)  # batching does not change the draws


# ---------------------------------------------------------------------- exclusions and errors


def _table(counts, meta=None) -> MicrobiomeTable:
    n, q = counts.shape
    return MicrobiomeTable(counts, [f"s{i}" for i in range(n)], [f"t{j}" for j in range(q)], sample_meta=meta)


def test_constant_and_sparse_taxa_are_left_out_with_a_report():
    rng = np.random.default_rng(0)
    counts = rng.poisson(20, size=(60, 6)).astype(float)
    counts[:, 1] = 0.0  # all zero
    counts[:, 2] = 0.0
    counts[:3, 2] = 5.0  # 3 nonzero values
    others = np.delete(counts, 3, axis=1).sum(axis=1)
    counts[:, 3] = others / 4.0  # 20% of every sample: constant relative abundance
    counts[0] = 0.0  # an empty sample
    result = dependency_matrix(_table(counts), n_permutations=20)
    excluded = result.excluded.set_index("taxon")["reason"]
    assert excluded["t1"] == "all zero"
    assert excluded["t2"].startswith("fewer than 10 nonzero values")
    assert excluded["t3"] == "no variance"
    assert set(excluded.index) == {"t1", "t2", "t3"}
    assert list(result.excluded_samples["sample"]) == ["s0"]
    assert not result.dep.loc[["t1", "t2", "t3"]].to_numpy().any()
    assert result.dep.shape == (6, 6)
    assert "left out 3 of 6 taxa" in result.summary()


def test_too_few_samples_is_a_clear_error():
    counts = np.random.default_rng(0).poisson(5, size=(8, 4)).astype(float) + 1
    with pytest.raises(TooFewSamplesError, match="at least 10") as info:
        dependency_matrix(_table(counts))
    assert isinstance(info.value, DepMicroError)
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)
    # enough samples in all, but too few for the covariates of the F-test
    counts = np.random.default_rng(1).poisson(5, size=(12, 4)).astype(float) + 1
    meta = pd.DataFrame({"site": [f"site{i}" for i in range(12)]}, index=[f"s{i}" for i in range(12)])
    with pytest.raises(TooFewSamplesError, match="degrees of freedom"):
        directional_tests(_table(counts, meta), covariates=["site"], min_nonzero=5)


def test_nothing_left_to_test_and_bad_options_are_clear_errors(sim):
    with pytest.raises(EmptyTableError, match="taxa left to test"):
        dependency_matrix(sim.table, min_nonzero=10_000)
    with pytest.raises(InvalidOptionError, match="no column 'nope'"):
        directional_tests(sim.table, covariates=["nope"])
    with pytest.raises(InvalidOptionError, match="time or order column"):
        directional_tests(sim.table, method="granger")
    with pytest.raises(InvalidOptionError, match="unknown method"):
        dependency_matrix(sim.table, method="pearson")


def test_missing_values_are_left_out_pair_by_pair(sim):
    table = sim.table.subset(taxa=sim.table.taxa_ids[:10])
    counts = table.counts.copy()
    counts[:50, 0] = np.nan
    result = dependency_matrix(table.with_counts(counts), n_permutations=20, min_nonzero=5)
    first = table.taxa_ids[0]
    kept = np.nansum(counts, axis=1) > 0  # samples with no observed abundance are left out
    assert len(result.excluded_samples) == (~kept).sum()
    for test, rows in result.tests.groupby("test"):
        with_first = (rows["source"] == first) | (rows["target"] == first)
        assert (rows.loc[with_first, "n"] == (kept & ~np.isnan(counts[:, 0])).sum()).all(), test
        assert (rows.loc[~with_first, "n"] == kept.sum()).all(), test
        assert rows["p"].notna().all()


# ---------------------------------------------------------------------- the lagged test


def _time_series(n: int = 240, seed: int = 0) -> MicrobiomeTable:
    """One subject, 5 taxa: taxon 0's past drives taxon 1 (lag 1); the rest are independent AR(1)."""
    rng = np.random.default_rng(seed)
    latent = np.zeros((n, 5))
    for t in range(1, n):
        latent[t] = 0.5 * latent[t - 1] + rng.normal(0, 1, 5)
        latent[t, 1] = 0.2 * latent[t - 1, 1] + 1.2 * latent[t - 1, 0] + rng.normal(0, 0.5)
    counts = rng.poisson(np.exp(3 + latent)).astype(float)
    order = rng.permutation(n)  # samples stored out of time order
    meta = pd.DataFrame({"day": np.arange(n)[order]}, index=[f"s{i}" for i in range(n)])
    return _table(counts[order], meta)


def test_granger_finds_the_lagged_direction_and_matches_statsmodels():
    import statsmodels.api as sm

    table = _time_series()
    result = directional_tests(table, method="granger", order_column="day")
    assert "granger" in result.test_used and "'day'" in result.test_used
    assert result.dep.loc["t0", "t1"] and not result.dep.loc["t1", "t0"]
    assert (result.tests["direction"] == "directed").all()
    mask = result.attention_dep(["t1", "t0", "unknown"])  # rows = dependent taxon (nn.masks convention)
    assert mask[0, 1] and not mask[1, 0] and not mask[2].any() and mask.shape == (3, 3)
    # the same F from two OLS fits on the time-ordered samples
    day = table.sample_meta["day"].to_numpy()
    idx = np.argsort(day)
    values = preprocess(table.counts)[idx]
    loglib = np.log(table.library_sizes.to_numpy())[idx]
    y, lag_y, lag_x = values[1:, 1], values[:-1, 1], values[:-1, 0]
    base = np.column_stack([np.ones(len(y)), loglib[1:], lag_y])
    restricted = sm.OLS(y, base).fit()
    full = sm.OLS(y, np.column_stack([base, lag_x])).fit()
    f, _p, _ = full.compare_f_test(restricted)
    row = result.tests[(result.tests["source"] == "t0") & (result.tests["target"] == "t1")].iloc[0]
    assert row.statistic == pytest.approx(f, rel=1e-8)


def test_both_uses_granger_when_an_order_is_given():
    table = _time_series(seed=1)
    result = dependency_matrix(table, order_column="day", n_permutations=50, min_nonzero=5)
    assert set(result.tests["test"]) == {"granger", "mi"}
    assert result.test_used.startswith("Dep = granger OR mi")
    assert result.c_dir is not None and result.c_mi is not None
    assert (result.dep == (result.c_dir | result.c_mi)).all().all()


def test_duplicated_time_points_need_a_group_column():
    table = _time_series(n=60)
    meta = table.sample_meta.copy()
    meta["day"] = meta["day"] // 2
    with pytest.raises(InvalidOptionError, match="share a time point"):
        directional_tests(MicrobiomeTable(table.counts, table.sample_ids, table.taxa_ids, sample_meta=meta),
                          method="granger", order_column="day")


# ---------------------------------------------------------------------- outputs


def test_graphml_parses_and_holds_the_graph(sim_result, tmp_path):
    path = sim_result.to_graphml(tmp_path / "deps.graphml")
    root = ET.parse(path).getroot()
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    graph = root.find("g:graph", ns)
    assert graph.get("edgedefault") == "undirected"
    assert len(graph.findall("g:node", ns)) == len(sim_result.taxa)
    assert len(graph.findall("g:edge", ns)) == len(sim_result.edges)
    keys = {k.get("attr.name") for k in root.findall("g:key", ns)}
    assert {"name", "label", "test", "q", "excluded"} <= keys
    with pytest.raises(DepMicroError, match="exists"):
        sim_result.to_graphml(path)


def test_plots_draw_both_panels(sim_result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pydepmicro.dependency_plots import plot_dependencies, plot_top_pairs

    fig = plot_dependencies(sim_result, n_top=10, n_taxa=15)
    left, right = fig.axes[:2]
    assert len(left.patches) >= 10  # bars
    assert len(right.collections) >= 1  # nodes
    plt.close(fig)
    fig = plot_top_pairs(sim_result, 6, test="mi")
    assert all("(mi)" in t.get_text() for t in fig.axes[0].get_yticklabels())
    plt.close(fig)


def test_cli_deps_writes_outputs_and_refuses_to_overwrite(sim, tmp_path):
    from click.testing import CliRunner

    from pydepmicro.cli_deps import deps
    from pydepmicro.io import write_table

    table = sim.table.subset(taxa=sim.table.taxa_ids[:15])
    write_table(table, tmp_path / "table.tsv")
    out = tmp_path / "edges.tsv"
    args = [str(tmp_path / "table.tsv"), "-o", str(out), "--permutations", "50", "--graphml",
            str(tmp_path / "g.graphml"), "--plot", str(tmp_path / "deps.png"), "--excluded", str(tmp_path / "x.tsv"),
            "--covariate", "sample_type", "--matrix", str(tmp_path / "dep.tsv")]
    runner = CliRunner()
    result = runner.invoke(deps, args)
    assert result.exit_code == 0, result.output
    edges = pd.read_csv(out, sep="\t")
    assert list(edges.columns[:7]) == ["source", "target", "test", "statistic", "p", "q", "direction"]
    assert (edges["q"] < 0.05).all() and len(edges) > 0
    dep = pd.read_csv(tmp_path / "dep.tsv", sep="\t", index_col=0)
    assert dep.shape == (15, 15)
    assert (tmp_path / "deps.png").stat().st_size > 10_000
    ET.parse(tmp_path / "g.graphml")
    # an existing output is kept unless --force
    again = runner.invoke(deps, args)
    assert again.exit_code != 0 and "exists" in str(again.exception)
    forced = runner.invoke(deps, args + ["--force", "--method", "mi", "--all-pairs"])
    assert forced.exit_code == 0, forced.output
    assert set(pd.read_csv(out, sep="\t")["test"]) == {"mi"}
    left_out = pd.read_csv(tmp_path / "x.tsv", sep="\t")
    tested = 15 - (left_out["kind"] == "taxon").sum()
    assert len(pd.read_csv(out, sep="\t")) == tested * (tested - 1) // 2


def test_cli_error_is_one_line_through_the_group(tmp_path):
    from click.testing import CliRunner

    from pydepmicro.cli import cli

    counts = np.random.default_rng(0).poisson(5, size=(6, 4)).astype(float) + 1
    frame = pd.DataFrame(counts.T, index=[f"t{j}" for j in range(4)], columns=[f"s{i}" for i in range(6)])
    frame.to_csv(tmp_path / "tiny.tsv", sep="\t", index_label="taxon")
    result = CliRunner().invoke(cli, ["deps", str(tmp_path / "tiny.tsv"), "-o", str(tmp_path / "e.tsv")])
    assert result.exit_code == 2
    assert "at least 10" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "e.tsv").exists()


# ---------------------------------------------------------------------- TCMA COAD


def _genus_species_pairs(root) -> set:
    taxa = pd.read_csv(root / "taxa_106.tsv", sep="\t")
    lineage = pd.read_csv(root / "taxonomy" / "tax_table.bacteria.ids.txt", sep="\t", index_col=0)
    genera = set(taxa.loc[taxa["rank"] == "genus", "ncbi_taxid"].astype(int))
    pairs = set()
    for taxid in taxa.loc[taxa["rank"] == "species", "ncbi_taxid"].astype(int):
        if taxid in lineage.index and pd.notna(lineage.loc[taxid, "genus"]):
            genus = int(lineage.loc[taxid, "genus"])
            if genus in genera:
                pairs.add(frozenset((str(genus), str(taxid))))
    return pairs


@pytest.mark.tcma
def test_tcma_coad_genus_species_pairs_are_among_the_strongest_edges(tcma_root):
    from pydepmicro.datasets import load_tcma

    table = load_tcma("coad", root=tcma_root)
    assert table.shape == (561, 106)
    pairs = _genus_species_pairs(tcma_root)
    assert len(pairs) >= 20
    result = dependency_matrix(table, n_permutations=200)
    for test in ("ftest", "mi"):
        ranked = result.top_pairs(len(result.tests), test=test)
        nested = np.array([frozenset((a, b)) in pairs for a, b in zip(ranked["source"], ranked["target"])])
        share_top = nested[: len(ranked) // 10].sum() / nested.sum()
        assert share_top >= 0.75, test  # measured: 33 of 36 (ftest), 32 of 36 (mi) in the top 10%
        assert (ranked.loc[nested, "q"] < 0.05).mean() >= 0.9


def test_relative_abundances_adjust_for_richness_instead_of_depth():
    # taxa independent given depth: whether each is seen depends on the read depth only. On read counts
    # the depth adjustment keeps Dep sparse; on percentages the totals say nothing about depth, and
    # richness must stand in for it, or every pair looks dependent through depth
    rng = np.random.default_rng(3)
    n, q = 400, 25
    depth = np.exp(rng.normal(8, 1.2, n))
    logit = rng.normal(-1, 0.5, q)[None, :] + 1.5 * (np.log(depth)[:, None] - 8)
    present = rng.random((n, q)) < 1 / (1 + np.exp(-logit))
    counts = np.where(present, np.round(depth[:, None] * rng.dirichlet(np.ones(q), n)) + 1, 0.0)
    table = _table(counts)
    totals = counts.sum(axis=1, keepdims=True)
    relative = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) * 100  # empty stay empty

    def density(result):
        dep = result.dep.to_numpy()
        return dep.sum() / (q * q - q)

    zeroed = relative.copy()  # as the blind benchmark feeds it: percentages with entries zeroed
    zeroed[rng.random(zeroed.shape) < 0.1] = 0
    on_counts = dependency_matrix(table, method="mi", n_permutations=50)
    on_relative = dependency_matrix(table.with_counts(relative), method="mi", n_permutations=50)
    on_zeroed = dependency_matrix(table.with_counts(zeroed), method="mi", n_permutations=50)
    unadjusted = dependency_matrix(table.with_counts(relative), method="mi", n_permutations=50, mi_strata=1)
    assert on_counts.params["depth"] == "library size"
    assert on_relative.params["depth"] == on_zeroed.params["depth"] == "richness"
    assert "richness" in on_relative.test_used and "richness" not in on_counts.test_used
    assert density(unadjusted) > 0.5  # depth alone makes most pairs dependent
    assert density(on_relative) < 0.5 * density(unadjusted)
    assert density(on_zeroed) < 0.5 * density(unadjusted)
    assert density(on_counts) < 0.5 * density(unadjusted)
