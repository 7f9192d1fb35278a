"""pydepmicro.evaluate: masks (P1/P2, blind/aware), metrics, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pydepmicro.datasets import load_tcma, simulate
from pydepmicro.errors import (
    DepMicroError,
    IdMismatchError,
    InputFormatError,
    InvalidOptionError,
    InvalidValueError,
)
from pydepmicro.evaluate import (
    BASELINES,
    EvalMask,
    apply_mask,
    baselines_for,
    draw_mask,
    imputation_metrics,
    impute_knn,
    impute_softimpute,
    impute_taxon_mean,
    impute_zeros,
    lineage_ancestors,
    lineage_relatives,
    masked_log_inputs,
    summarise,
)
from pydepmicro.table import MicrobiomeTable


def make_table(counts, taxonomy=None) -> MicrobiomeTable:
    n, q = np.shape(counts)
    return MicrobiomeTable(np.asarray(counts, dtype=float), [f"s{i}" for i in range(n)],
                           [f"t{j}" for j in range(q)], taxonomy=taxonomy)


@pytest.fixture(scope="module")
def sim_table() -> MicrobiomeTable:
    table = simulate(60, 20, seed=1, metadata=False).table
    counts = table.counts.copy()
    counts[0, :3] = np.nan  # a few missing entries: never drawn
    return table.with_counts(counts)


# a genus with two species, a second genus with one, their family, and an unrelated genus
NESTED = pd.DataFrame({
    "kingdom": ["Bacteria"] * 6,
    "phylum": ["Firmicutes"] * 5 + ["Bacteroidetes"],
    "family": ["Fam"] * 5 + ["Other"],
    "genus": [np.nan, "Gen", "gen", "gen", "Two", "Lone"],
    "species": [np.nan, np.nan, "Gen a", "Gen b", np.nan, np.nan],
    "Rank": ["FAMILY", "genus", "Species", "species", "genus", "genus"],
}, index=[f"t{j}" for j in range(6)])


# ------------------------------------------------------------------------------ masks


def test_mask_fraction_and_never_zero_or_nan(sim_table):
    m = draw_mask(sim_table, fraction=0.1, seed=0)
    counts = sim_table.counts
    nonzero = np.nan_to_num(counts) > 0
    assert m.n_drawn == round(0.1 * nonzero.sum())
    assert not (m.drawn & ~nonzero).any()  # zeros and NaN never drawn
    assert np.array_equal(m.drawn, m.hidden) and m.variant == "p1"
    assert m.sample_ids.equals(sim_table.sample_ids) and m.taxa_ids.equals(sim_table.taxa_ids)
    with pytest.raises(ValueError):
        m.drawn[0, 0] = True  # read-only


def test_mask_seeds(sim_table):
    a, b = draw_mask(sim_table, seed=3), draw_mask(sim_table, seed=3)
    c = draw_mask(sim_table, seed=4)
    assert np.array_equal(a.drawn, b.drawn)
    assert not np.array_equal(a.drawn, c.drawn)


@pytest.mark.parametrize("kwargs", [{"fraction": 0}, {"fraction": 1.5}, {"seed": -1},
                                    {"variant": "p3"}])
def test_mask_bad_options(sim_table, kwargs):
    with pytest.raises(InvalidOptionError):
        draw_mask(sim_table, **kwargs)


def test_mask_save_load(sim_table, tmp_path):
    m = draw_mask(simulate(40, 12, seed=2).table, variant="p1", seed=7)
    path = m.save(tmp_path / "mask")
    assert path.name == "mask.npz"
    back = EvalMask.load(path)
    assert np.array_equal(back.drawn, m.drawn) and np.array_equal(back.hidden, m.hidden)
    assert (back.variant, back.seed) == ("p1", 7)
    assert back.sample_ids.equals(m.sample_ids) and back.taxa_ids.equals(m.taxa_ids)
    np.savez(tmp_path / "bad.npz", drawn=np.zeros((2, 2), bool))
    with pytest.raises(InputFormatError):
        EvalMask.load(tmp_path / "bad.npz")
    with pytest.raises(DepMicroError):
        EvalMask.load(tmp_path / "absent.npz")


def test_lineage_relatives_hand_built():
    rel = lineage_relatives(NESTED, NESTED.index)
    expected = np.zeros((6, 6), bool)
    for a, b in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3)]:
        expected[a, b] = expected[b, a] = True
    assert np.array_equal(rel, expected)  # case-insensitive names, ranks and columns
    # without a rank column the rank is the deepest filled column: same answer here
    assert np.array_equal(lineage_relatives(NESTED.drop(columns="Rank"), NESTED.index), expected)


def test_lineage_ancestors_nearest_first():
    anc = lineage_ancestors(NESTED, NESTED.index)
    assert anc == {"t0": [], "t1": ["t0"], "t2": ["t1", "t0"], "t3": ["t1", "t0"], "t4": ["t0"], "t5": []}
    # on a subset the chain holds the subset's taxa only
    assert lineage_ancestors(NESTED, ["t3", "t0"]) == {"t3": ["t0"], "t0": []}
    rel = lineage_relatives(NESTED, NESTED.index)
    assert all(rel[int(b[1]), [int(a[1]) for a in chain]].all() for b, chain in anc.items())


def test_lineage_intermediate_rank_is_conservative():
    tax = pd.DataFrame({
        "Phylum": ["Proteo", "Proteo", "Proteo", "Firmi"],
        "Class": [np.nan, np.nan, "Gamma", "Bacilli"],
        "rank": ["phylum", "subphylum", "class", "class"],
    }, index=["p", "sub", "c1", "c2"])
    rel = lineage_relatives(tax, tax.index)
    assert rel[1, 0] and rel[1, 2] and not rel[1, 3] and rel[0, 2] and not rel[2, 3]


def test_p2_hides_relatives():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, size=(40, 6)).astype(float)
    counts[:5, 3] = 0.0  # zero relatives are hidden too (observed)
    table = make_table(counts, taxonomy=NESTED)
    p2 = draw_mask(table, seed=1, variant="p2")
    rel = lineage_relatives(NESTED, table.taxa_ids)
    expect = p2.drawn | (p2.drawn.astype(int) @ rel.astype(int) > 0)
    assert np.array_equal(p2.hidden, expect)
    assert p2.n_hidden > p2.n_drawn
    p1 = draw_mask(table, seed=1, variant="p1")
    assert np.array_equal(p1.drawn, p2.drawn)  # same draw, more hidden
    nonzero_only = draw_mask(table, seed=1, variant="p2", hide_zeros=False)
    assert np.array_equal(nonzero_only.hidden, expect & (counts > 0))


def test_p2_needs_taxonomy(sim_table):
    bare = make_table(np.ones((10, 3)))
    with pytest.raises(InvalidOptionError, match="taxonomy"):
        draw_mask(bare, variant="p2")
    with pytest.warns(UserWarning, match="equals the p1 mask"):  # simulate: species only
        m = draw_mask(sim_table, variant="p2")
    assert np.array_equal(m.drawn, m.hidden)


def test_apply_mask_regimes(sim_table):
    m = draw_mask(sim_table, seed=0)
    blind, aware = apply_mask(sim_table, m, "blind"), apply_mask(sim_table, m, "aware")
    assert (blind.counts[m.hidden] == 0).all() and np.isnan(aware.counts[m.hidden]).all()
    keep = ~m.hidden
    for out in (blind, aware):
        assert np.array_equal(out.counts[keep], sim_table.counts[keep], equal_nan=True)
    assert not np.isnan(sim_table.counts[m.hidden]).any()  # the input is untouched
    with pytest.raises(InvalidOptionError):
        apply_mask(sim_table, m, "hidden")
    other = sim_table.subset(samples=sim_table.sample_ids[::-1])
    with pytest.raises(IdMismatchError):
        apply_mask(other, m, "aware")


def test_masked_log_inputs_keep_observed(sim_table):
    m = draw_mask(sim_table, seed=0)
    truth, x = masked_log_inputs(sim_table, m, "aware")
    keep = ~m.hidden
    assert np.array_equal(truth[keep], x[keep], equal_nan=True)
    assert np.isnan(x[m.hidden]).all() and (truth[m.drawn] > 0).all()


# ------------------------------------------------------------------------------ metrics


def hand_case():
    truth = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 4.0], [2.0, 5.0, 0.0], [1.5, 0.0, 2.5]])
    drawn = np.zeros_like(truth, dtype=bool)
    drawn[[0, 1, 2, 3], [0, 2, 1, 2]] = True
    return truth, EvalMask(drawn, drawn.copy(), "p1", 0, list("abcd"), list("xyz"))


def test_metrics_perfect_imputation():
    truth, mask = hand_case()
    r = imputation_metrics(truth, truth, mask, regime="aware",
                           lower=truth - 0.1, upper=truth + 0.1)
    assert r["pcc"] == pytest.approx(1) and r["cosine"] == pytest.approx(1)
    assert r["rmse"] == 0 and r["mae"] == 0 and r["false_fill"] == 0
    assert r["observed_fidelity"] == 0 and r["dropout_auroc"] == 1 and r["coverage"] == 1
    assert (r["n_drawn"], r["n_hidden"], r["n_true_zeros"]) == (4, 4, 4)
    assert np.isnan(r["per_taxon_pcc"]) and r["n_taxa_pcc"] == 0  # < 5 drawn per taxon
    assert all(isinstance(v, float) for v in r.values())


def test_metrics_hand_computed_errors():
    truth, mask = hand_case()
    imputed = truth.copy()
    imputed[mask.drawn] += [1.0, -1.0, 1.0, -1.0]
    imputed[0, 1] = 2.5  # an observed nonzero changed by 0.5
    r = imputation_metrics(truth, imputed, mask, regime="blind",
                           lower=np.zeros_like(truth), upper=np.zeros_like(truth))
    assert r["rmse"] == pytest.approx(1) and r["mae"] == pytest.approx(1)
    assert r["observed_fidelity"] == pytest.approx(0.5) and r["coverage"] == 0


def test_metrics_fill_every_zero():
    truth, mask = hand_case()
    filled = np.where(truth == 0, 1.0, truth)
    r = imputation_metrics(truth, filled, mask, regime="blind")
    assert r["false_fill"] == 1
    assert r["dropout_auroc"] == pytest.approx(np.mean(truth[mask.drawn][:, None] > 1.0)
                                               + 0.5 * np.mean(truth[mask.drawn] == 1.0))


def test_metrics_grouped_pcc(sim_table):
    m = draw_mask(sim_table, fraction=0.5, seed=0)
    truth, _ = masked_log_inputs(sim_table, m, "aware")
    r = imputation_metrics(truth, truth * 2 + 1, m, regime="aware")
    assert r["per_taxon_pcc"] == pytest.approx(1) and r["n_taxa_pcc"] > 0
    assert r["per_sample_pcc"] == pytest.approx(1) and r["n_samples_pcc"] > 0


def test_metrics_input_checks():
    truth, mask = hand_case()
    with pytest.raises(InvalidOptionError):
        imputation_metrics(truth, truth, mask, regime="other")
    with pytest.raises(InvalidValueError):
        imputation_metrics(truth, truth[:, :2], mask, regime="aware")
    bad = truth.copy()
    bad[mask.drawn] = np.nan
    with pytest.raises(InvalidValueError, match="NaN"):
        imputation_metrics(truth, bad, mask, regime="aware")


def test_summarise():
    rows = [{"method": m, "regime": "aware", "seed": s, "pcc": p, "rmse": 1.0}
            for m, s, p in [("a", 0, 0.5), ("a", 1, 0.7), ("b", 0, 0.9)]]
    out = summarise(rows).set_index("method")
    assert out.loc["a", "pcc_mean"] == pytest.approx(0.6)
    assert out.loc["a", "pcc_sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert out.loc["a", "n_runs"] == 2 and np.isnan(out.loc["b", "pcc_sd"])
    assert "seed_mean" not in out.columns and "regime" in out.columns


# ------------------------------------------------------------------------------ baselines


@pytest.fixture(scope="module")
def log_inputs(sim_table):
    m = draw_mask(sim_table, seed=0)
    return {regime: masked_log_inputs(sim_table, m, regime) for regime in ("aware", "blind")}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_keep_observed_and_fill(log_inputs, name):
    for _, x in log_inputs.values():
        out = BASELINES[name](x, seed=0)
        assert out.shape == x.shape and np.isfinite(out).all() and (out >= 0).all()
        nonzero = np.nan_to_num(x) > 0
        assert np.array_equal(out[nonzero], x[nonzero])
        if "fill_zeros" not in name and "zeros_as" not in name and "neighbour" not in name:
            assert np.array_equal(out[x == 0], x[x == 0])  # aware methods keep zeros


def test_baselines_simple_values():
    x = np.array([[1.0, np.nan, 0.0], [3.0, 2.0, 0.0], [np.nan, 4.0, 0.0]])
    assert np.array_equal(impute_zeros(x), np.nan_to_num(x))
    assert np.array_equal(impute_taxon_mean(x), [[1, 3, 0], [3, 2, 0], [2, 4, 0]])
    filled = impute_taxon_mean(x, fill_zeros=True)
    assert filled[2, 0] == 2 and (filled[:, 2] == 0).all()  # a taxon never seen stays 0
    knn = impute_knn(x, k=1, variant="neighbour_mean")
    assert np.isfinite(knn).all() and knn[0, 0] == 1
    assert np.isfinite(impute_softimpute(x, rank=1)).all()
    for bad in (-x, np.full((2, 2), np.inf), np.ones(3)):
        with pytest.raises(InvalidValueError):
            impute_zeros(bad)
    with pytest.raises(InvalidOptionError):
        impute_knn(x, k=0)
    with pytest.raises(InvalidOptionError):
        impute_knn(x, variant="mean")


def test_blind_fill_zeros_variants_fill(log_inputs):
    _, x = log_inputs["blind"]
    for name in ("taxon_mean_fill_zeros", "knn10_zeros_as_missing", "softimpute_fill_zeros"):
        assert (BASELINES[name](x)[x == 0] > 0).mean() > 0.5


def test_registry_by_regime():
    aware, blind = baselines_for("aware"), baselines_for("blind")
    assert {"zeros", "taxon_mean", "knn10", "softimpute", "iterative"} == set(aware)
    assert "knn10_zeros_as_missing" in blind and "knn10_neighbour_mean" in blind
    assert all(callable(f) for f in (*aware.values(), *blind.values()))
    with pytest.raises(InvalidOptionError):
        baselines_for("both")


def test_knn_beats_taxon_mean_on_structured_table():
    table = simulate(150, 30, zero_fraction=0.5, dependency_strength=2.0, metadata=False,
                     seed=0).table
    m = draw_mask(table, seed=0)
    truth, x = masked_log_inputs(table, m, "aware")
    knn = imputation_metrics(truth, impute_knn(x), m, regime="aware")
    mean = imputation_metrics(truth, impute_taxon_mean(x), m, regime="aware")
    assert knn["pcc"] > mean["pcc"] + 0.03 and knn["rmse"] < mean["rmse"]
    assert knn["false_fill"] == 0 and knn["observed_fidelity"] == 0


# ------------------------------------------------------------------------------ TCMA


@pytest.mark.tcma
def test_p2_on_coad_hides_more(tcma_root):
    table = load_tcma("coad", root=tcma_root, with_metadata=False)
    p1 = draw_mask(table, seed=0, variant="p1")
    p2 = draw_mask(table, seed=0, variant="p2")
    assert np.array_equal(p1.drawn, p2.drawn) and p1.n_hidden == p1.n_drawn
    nonzero_hidden = (p2.hidden & (table.counts > 0)).sum() / p2.n_drawn
    assert 3 < nonzero_hidden < 8  # about 5 hidden nonzero entries per evaluated one
    assert nonzero_hidden <= p2.n_hidden / p2.n_drawn < 15  # zero relatives are hidden too
