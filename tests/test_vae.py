"""TaxonEmbedding (ids -> rows, extend, transfer) and TaxonVAE (shapes, loss, masking, init, save)."""

import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from pydepmicro.errors import IdMismatchError
from pydepmicro.nn.embeddings import TaxonEmbedding
from pydepmicro.nn.vae import TaxonVAE

torch.set_num_threads(1)

TAXA = [f"t{i}" for i in range(20)]


def small_vae(vocab=TAXA, seed=0, **kw):
    torch.manual_seed(seed)
    return TaxonVAE(vocab=vocab, **{"d_z": 4, "d_model": 32, "n_layers": 2, "n_heads": 4, **kw})


def sparse_data(n=64, q=20, seed=0, missing=0.1):
    """Log-abundance-like matrix: presence and abundance both driven by 2 latent factors."""
    g = np.random.default_rng(seed)
    u = g.normal(size=(n, 2))
    presence_p = 1 / (1 + np.exp(-(u @ (g.normal(size=(2, q)) * 1.5) + g.normal(size=q) - 0.3)))
    present = g.random((n, q)) < presence_p
    abundance = np.log1p(np.exp(u @ (g.normal(size=(2, q)) * 0.5) + g.uniform(0.3, 1.2, size=q)))
    y = np.where(present, abundance, 0.0)
    m = g.random((n, q)) > missing
    return torch.tensor(y, dtype=torch.float32), torch.tensor(m)


# ---------------------------------------------------------------------------------------------
# TaxonEmbedding


def test_embedding_index_and_unknown_ids():
    emb = TaxonEmbedding(vocab=["a", "b", "c"], dim=5)
    assert emb.index(["c", "a"]).tolist() == [2, 0]
    assert emb(emb.index(["c", "a"])).shape == (2, 5)
    assert emb.index([]).shape == (0,)
    with pytest.raises(IdMismatchError, match="x, y") as info:
        emb.index(["a", "x", "y"])
    assert "2 of 3" in str(info.value) and "extend" in str(info.value)
    with pytest.raises(ValueError, match="duplicated"):
        emb.index(["a", "a"])
    with pytest.raises(ValueError, match="duplicated"):
        TaxonEmbedding(vocab=["a", "a"], dim=2)
    with pytest.raises(TypeError):
        emb.index("abc")  # a single string is not a list of ids


def test_embedding_extend_mean_and_config_rebuild():
    torch.manual_seed(0)
    emb = TaxonEmbedding(vocab=["a", "b", "c"], dim=4)
    before = emb.weight.detach().clone()
    assert emb.extend(["b", "d", "e"]) == 2  # "b" is known
    assert emb.vocab == ("a", "b", "c", "d", "e")
    assert torch.equal(emb.weight[:3], before)  # old rows untouched
    assert torch.allclose(emb.weight[3], before.mean(0)) and torch.allclose(emb.weight[4], before.mean(0))
    assert emb.index(["e"]).tolist() == [4]
    config = json.loads(json.dumps(emb.config))  # plain JSON, vocab included
    assert config["vocab"] == list("abcde")
    rebuilt = type(emb)(**config)
    rebuilt.load_state_dict(emb.state_dict())
    assert torch.equal(rebuilt.weight, emb.weight)
    empty = TaxonEmbedding(vocab=[], dim=3)
    assert empty.extend(["z"]) == 1 and empty.weight.shape == (1, 3)


def test_embedding_transfer_copies_shared_rows_exactly():
    torch.manual_seed(1)
    source = TaxonEmbedding(vocab=["a", "b", "c", "d"], dim=6)
    target = TaxonEmbedding(vocab=["x", "d", "b", "y"], dim=6)
    untouched = target.weight.detach().clone()
    assert target.transfer_from(source) == 2
    assert torch.equal(target(target.index(["d", "b"])), source(source.index(["d", "b"])))
    assert torch.equal(target.weight[[0, 3]], untouched[[0, 3]])
    assert target.transfer_from(TaxonEmbedding(vocab=["q"], dim=6)) == 0
    with pytest.raises(ValueError, match="dimension"):
        target.transfer_from(TaxonEmbedding(vocab=["a"], dim=3))


# ---------------------------------------------------------------------------------------------
# TaxonVAE: shapes, subsets of the vocabulary


def test_vae_shapes_on_a_subset_in_any_order():
    vae = small_vae().eval()
    B, taxa = 3, ["t7", "t2", "t19", "t0", "t11"]
    y, m = torch.rand(B, len(taxa)), torch.ones(B, len(taxa))
    idx = vae.index(taxa)
    mu, logvar = vae.encode(y, m, idx)
    assert mu.shape == logvar.shape == (B, 5, 4)
    dec = vae.decode(vae.reparameterize(mu, logvar), idx)
    for key in ("abundance", "presence_logit", "presence_prob", "mean"):
        assert dec[key].shape == (B, 5)
    assert (dec["abundance"] >= 0).all()
    out = vae(y, m, taxa)  # ids work in place of rows
    assert out["z"].shape == (B, 5, 4) and out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert torch.equal(out["mean"], vae(y, m, idx)["mean"])
    with pytest.raises(ValueError, match="taxon_index is required"):
        vae(y, m)
    with pytest.raises(ValueError, match="5 taxa"):
        vae(y, m, idx[:4])
    with pytest.raises(IdMismatchError):
        vae.index(["t0", "new"])


def test_vae_sampled_presence_is_hard_with_straight_through_gradient():
    vae = small_vae()
    z = torch.randn(4, 20, 4)
    dec = vae.decode(z, presence="sample", generator=torch.Generator().manual_seed(0))
    assert set(dec["presence_mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(dec["mean"], dec["presence_mask"] * dec["abundance"])
    dec["mean"].sum().backward()
    assert vae.presence_bias.weight.grad.abs().sum() > 0  # gradient reaches the presence logits


# ---------------------------------------------------------------------------------------------
# training: the loss goes down and reconstruction beats the per-taxon mean


def test_vae_training_reduces_loss_and_beats_per_taxon_mean():
    y, m = sparse_data()
    train, test = slice(0, 48), slice(48, 64)
    vae = small_vae()
    vae.init_from_data(y[train], m[train])
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = vae(y[train], m[train])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

    vae.eval()
    with torch.no_grad():
        out = vae(y[test], m[test])
    obs = m[test]
    baseline = torch.stack([y[train][:, j][m[train][:, j]].mean() for j in range(y.shape[1])])
    mse_baseline = ((baseline - y[test])[obs] ** 2).mean().item()
    mse_model = ((out["mean"] - y[test])[obs] ** 2).mean().item()
    assert abs(out["mse"].item() - mse_model) < 1e-6
    assert mse_model < 0.5 * mse_baseline, (mse_model, mse_baseline)


# ---------------------------------------------------------------------------------------------
# missing entries


def test_missing_entries_affect_neither_loss_nor_encoder():
    y, m = sparse_data(n=8, missing=0.3)
    vae = small_vae().eval()
    ref = vae(y, m)
    y2 = y.clone()
    y2[~m] = torch.rand(int((~m).sum())) * 5.0
    y3 = y.clone()
    y3[~m] = float("nan")
    for perturbed in (y2, y3):
        out = vae(perturbed, m)
        assert torch.equal(out["mu"], ref["mu"]) and torch.equal(out["logvar"], ref["logvar"])
        for key in ("loss", "presence_loss", "abundance_loss", "kl", "mse"):
            assert torch.equal(out[key], ref[key]), key
    # with the same z, the loss sees observed entries only (decoder outputs perturbed at masked ones)
    dec = vae.decode(ref["mu"])
    noisy = {k: v.clone() for k, v in dec.items()}
    for k in ("abundance", "presence_logit", "mean"):
        noisy[k][~m] += 3.0
    a = vae.loss(y, m, dec, ref["mu"], ref["logvar"])
    b = vae.loss(y, m, noisy, ref["mu"], ref["logvar"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    # NaN with m=None means missing
    assert torch.equal(vae(y3)["mu"], ref["mu"])
    # ... but the indicator itself is information: flipping it changes the encoding
    m2 = m.clone()
    m2[0, 0] = ~m2[0, 0]
    assert not torch.equal(vae.encode(torch.nan_to_num(y), m2)[0], ref["mu"])


# ---------------------------------------------------------------------------------------------
# sparsity-preserving initialisation


def test_presence_bias_init_matches_prevalence():
    vae = small_vae().eval()
    prevalence = torch.linspace(0.0, 1.0, 20)
    vae.init_presence_bias(prevalence)
    vae.init_abundance_bias(torch.linspace(0.1, 2.0, 20))
    y, m = sparse_data(n=16)
    out = vae(y, m)
    expected = prevalence.clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(out["presence_prob"], expected.expand(16, -1), atol=1e-5)
    assert torch.allclose(out["abundance"], torch.linspace(0.1, 2.0, 20).expand(16, -1), atol=1e-5)
    # on a subset, in another order: only the chosen rows change
    idx = vae.index(["t3", "t1"])
    vae.init_presence_bias([0.25, 0.75], idx)
    probs = vae.decode(torch.zeros(2, 20, 4))["presence_prob"][0]
    assert abs(probs[3].item() - 0.25) < 1e-3 and abs(probs[1].item() - 0.75) < 1e-3
    assert abs(probs[2].item() - expected[2].item()) < 1e-5


def test_init_from_data_reproduces_observed_prevalence():
    y, m = sparse_data(n=64)
    vae = small_vae().eval()
    vae.init_from_data(y, m)
    prevalence = ((y > 0) & m).sum(0) / m.sum(0)
    probs = vae.decode(torch.randn(5, 20, 4))["presence_prob"]
    assert torch.allclose(probs, prevalence.clamp(1e-3, 1 - 1e-3).expand(5, -1), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# taxa transfer, config, save


def test_vae_transfer_to_a_reordered_superset():
    source = small_vae(seed=1)
    source.init_from_data(*sparse_data())
    target = small_vae(vocab=["new1"] + TAXA[::-1], seed=2)
    assert target.transfer_from(source) == 20
    y, m = sparse_data(n=5, seed=3)
    taxa = ["t4", "t9", "t0", "t15"]
    cols = [TAXA.index(t) for t in taxa]
    source.eval(), target.eval()
    a = source(y[:, cols], m[:, cols], source.index(taxa))
    b = target(y[:, cols], m[:, cols], target.index(taxa))
    assert torch.allclose(a["mean"], b["mean"], atol=1e-6) and torch.allclose(a["mu"], b["mu"], atol=1e-6)
    # the new taxon has rows, and extend adds more
    assert target.extend(["new1", "new2"]) == 1
    assert target(torch.rand(2, 3), None, ["new2", "t4", "new1"])["mean"].shape == (2, 3)
    with pytest.raises(ValueError, match="different sizes"):
        target.transfer_from(small_vae(d_z=2))


def test_config_rebuild_and_safetensors_roundtrip(tmp_path):
    vae = small_vae(beta=0.05)
    vae.extend(["extra"])
    vae.init_from_data(*sparse_data(q=21))
    vae.eval()
    config = json.loads(json.dumps(vae.config))
    assert config["vocab"][-1] == "extra" and config["beta"] == 0.05
    y, m = sparse_data(n=6, q=21, seed=4)
    ref = vae(y, m)

    rebuilt = type(vae)(**config).eval()
    rebuilt.load_state_dict(vae.state_dict())
    out = rebuilt(y, m)
    for key in ("mu", "logvar", "mean", "presence_logit", "loss"):
        assert torch.equal(out[key], ref[key]), key

    path = tmp_path / "model.safetensors"
    save_file(vae.state_dict(), str(path))  # no pickle anywhere
    loaded = type(vae)(**config).eval()
    loaded.load_state_dict(load_file(str(path)))
    out = loaded(y, m)
    assert all(torch.equal(out[k], ref[k]) for k in ("mu", "mean", "loss"))


@pytest.mark.parametrize(
    "bad",
    [dict(d_model=30, n_heads=4), dict(d_z=0), dict(vocab=[]), dict(vocab=["a", "a"]), dict(beta=-1.0), dict(dropout=1.0)],
)
def test_vae_bad_hyperparameters(bad):
    with pytest.raises(ValueError):
        TaxonVAE(**{"vocab": TAXA, **bad})


def test_vae_bad_inputs():
    vae = small_vae()
    with pytest.raises(ValueError, match="must be finite"):
        vae(torch.full((2, 20), float("nan")), torch.ones(2, 20))
    with pytest.raises(ValueError, match="shape"):
        vae(torch.rand(2, 20), torch.ones(2, 19))
    with pytest.raises(ValueError, match="prevalence"):
        vae.init_presence_bias(torch.full((20,), 1.5))


# -- lineage inputs ----------------------------------------------------------------------------

LINEAGE = {"fam": [], "gen": ["fam"], "sp1": ["gen", "fam"], "sp2": ["gen", "fam"], "other": []}


def _log(x):
    return torch.log1p(torch.as_tensor(x, dtype=torch.float32))


def test_lineage_features_read_the_parents_unaccounted_reads():
    vae = TaxonVAE(vocab=list(LINEAGE), d_model=16, n_heads=2, lineage_inputs=True, ancestors=list(LINEAGE.values()))
    taxa = ["fam", "gen", "sp1", "sp2", "other"]
    # fam 100 reads: gen 80 of them, whose species hold 30 + 10 (sample 0) or sp1 dropped (sample 1)
    x = [[100.0, 80.0, 30.0, 10.0, 5.0], [100.0, 80.0, 0.0, 10.0, 5.0]]
    f = vae.lineage_features(_log(x), vae.index(taxa))
    assert vae.table_parents(vae.index(taxa)).tolist() == [-1, 0, 1, 1, -1]
    # u of a species = (gen - species total) / gen: 40/80 with both, 70/80 with sp1 dropped
    assert f[0, 2, 0].item() == pytest.approx(0.5, abs=1e-5) and f[1, 2, 0].item() == pytest.approx(70 / 80, abs=1e-5)
    assert f[0, 1, 0].item() == pytest.approx(0.2, abs=1e-5)  # gen: 20 of fam's 100 unaccounted
    assert f[:, 0, :2].abs().sum() == 0 and f[:, 4].abs().sum() == 0  # no parent: 0 (and "other" no children)
    assert f[0, 0, 2].item() == pytest.approx(math.log1p(80), abs=1e-4)
    assert f[0, 2, 1] == 1 and f[0, 1, 2].item() == pytest.approx(math.log1p(40), abs=1e-5)  # parent present, children
    # a table without the genus: the species' parent is the family (nearest ancestor present)
    sub = ["sp1", "sp2", "fam"]
    assert vae.table_parents(vae.index(sub)).tolist() == [2, 2, -1]
    g = vae.lineage_features(_log([[0.0, 10.0, 100.0]]), vae.index(sub))
    assert g[0, 0, 0].item() == pytest.approx(0.9, abs=1e-5) and g[0, 2, 2].item() == pytest.approx(math.log1p(10), abs=1e-5)
    # the encoder reads them: dropping sp1 changes the genus' and sp2's inputs, not only sp1's
    vae.eval()
    mu0, _ = vae.encode(_log(x[:1]), None, vae.index(taxa))
    plain = TaxonVAE(vocab=list(LINEAGE), d_model=16, n_heads=2)
    assert vae.enc_in.in_features == 6 and plain.enc_in.in_features == 3 and mu0.shape == (1, 5, 4)


def test_lineage_survives_config_extend_and_transfer(tmp_path):
    vae = TaxonVAE(vocab=list(LINEAGE), d_model=16, n_heads=2, lineage_inputs=True)
    assert vae.set_lineage({**LINEAGE, "unknown": ["fam"], "gen": ["fam", "not-in-vocab"]}) == 5
    assert vae.ancestors["gen"] == ("fam",)  # ids outside the vocabulary are dropped
    config = json.loads(json.dumps(vae.config))
    rebuilt = TaxonVAE(**config)
    rebuilt.load_state_dict(vae.state_dict())  # the ancestor table is not a weight
    index = vae.index(list(LINEAGE))
    assert torch.equal(rebuilt.table_parents(index), vae.table_parents(index))
    vae.extend(["new"])
    assert vae.ancestors["new"] == () and vae.table_parents(vae.index(["new", "fam"])).tolist() == [-1, -1]
    # a target that knows no lineage takes the source's; one that does keeps its own
    target = TaxonVAE(vocab=["sp1", "gen", "fam"], d_model=16, n_heads=2, lineage_inputs=True,
                      ancestors=[[], [], []])
    target.set_lineage({"gen": []})
    target.transfer_from(vae)
    assert target.ancestors["sp1"] == ("gen", "fam")
    with pytest.raises(ValueError, match="lineage_inputs"):
        TaxonVAE(vocab=list(LINEAGE), d_model=16, n_heads=2).transfer_from(vae)
    with pytest.raises(ValueError, match="ancestors"):
        TaxonVAE(vocab=list(LINEAGE), lineage_inputs=True, ancestors=[[]])
