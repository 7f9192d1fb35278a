"""Generation (issue 7): training-time generation examples, the sparsity loss, DepMicroDiff.generate and
``depmicro generate``. Tiny models: behaviour, not fidelity (that is inst/scripts/eval_generation.py).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from click.testing import CliRunner  # noqa: E402

from pydepmicro.cli import cli  # noqa: E402
from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.errors import IdMismatchError, InvalidOptionError, InvalidValueError  # noqa: E402
from pydepmicro.io import read_table, write_table  # noqa: E402
from pydepmicro.model import DepMicroDiff  # noqa: E402
from pydepmicro.model._data import corrupt, generation_rows  # noqa: E402
from pydepmicro.nn.vae import TaxonVAE  # noqa: E402

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=3,
            dependency="ftest", num_train_timesteps=100)
STEPS = dict(vae_steps=150, dat_steps=100, progress=False)


@pytest.fixture(scope="module")
def table():
    return simulate(80, 15, seed=4, zero_fraction=0.5, metadata=True).table


@pytest.fixture(scope="module")
def model(table):
    return DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, seed=0, **STEPS)


# ---------------------------------------------------------------------- training pieces


def _corrupt(y, obs, seed, hide_all=0.0):
    gen = torch.Generator().manual_seed(seed)
    return corrupt(y, obs, max_hide=0.3, max_drop=0.3, hide_zeros=False, generator=gen, hide_all=hide_all)


def test_corrupt_hides_whole_rows_and_keeps_them_out_of_changed():
    torch.manual_seed(0)
    y = torch.rand(2000, 10) * (torch.rand(2000, 10) > 0.4)
    obs = torch.ones_like(y, dtype=torch.bool)
    y_in, obs_in, changed = _corrupt(y, obs, 1, hide_all=0.2)
    whole = generation_rows(obs, obs_in)
    assert 0.17 < whole.float().mean() < 0.23
    assert not obs_in[whole].any() and not changed[whole].any() and (y_in[whole] == 0).all()
    assert obs_in[~whole].any(1).all() and changed[~whole].any()


def test_corrupt_without_generation_rows_keeps_the_random_stream():
    y = torch.rand(50, 8) * (torch.rand(50, 8) > 0.3)
    obs = torch.rand(50, 8) > 0.1
    for a, b in zip(_corrupt(y, obs, 3), _corrupt(y, obs, 3, hide_all=0.0)):
        assert torch.equal(a, b)
    assert not generation_rows(obs, _corrupt(y, obs, 3)[1]).any()


def test_sparsity_loss_is_zero_when_rates_match_and_its_gradient_passes_straight_through():
    prob = torch.full((400, 3), 0.5, requires_grad=True)
    y = torch.zeros(400, 3)
    y[:200] = 1.0  # real presence rate 0.5 per taxon
    obs = torch.ones(400, 3, dtype=torch.bool)
    u = torch.linspace(0.0, 0.999, 400)[:, None].expand(400, 3)  # exactly half below 0.5
    counts = TaxonVAE.presence_counts(prob, y, obs, u)
    assert torch.equal(counts[0].detach(), counts[1])
    assert float(TaxonVAE.sparsity_loss(*counts).detach()) == 0.0
    # too many zeros sampled: the loss is positive and its gradient raises every presence probability
    y[:300] = 1.0
    loss = TaxonVAE.sparsity_loss(*TaxonVAE.presence_counts(prob, y, obs, u))
    loss.backward()
    assert float(loss.detach()) > 0 and (prob.grad < 0).all()


def test_unobserved_taxa_are_left_out_of_the_sparsity_loss():
    prob = torch.tensor([[0.9, 0.2], [0.9, 0.2]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    obs = torch.tensor([[True, False], [True, False]])
    counts = TaxonVAE.presence_counts(prob, y, obs, torch.full((2, 2), 0.5))
    assert float(TaxonVAE.sparsity_loss(*counts).detach()) == 0.0


def test_vae_sparsity_weight_is_in_the_config_and_trained(table):
    model = DepMicroDiff(metadata=False, device="cpu", vae_sparsity_weight=0.5, **TINY)
    model.fit(table, seed=0, vae_steps=20, dat_steps=5, progress=False)
    assert model.vae.config["sparsity_weight"] == 0.5
    assert "train_sparsity_loss" in model.history_frame.columns
    with pytest.raises(InvalidOptionError, match="vae_sparsity_weight"):
        DepMicroDiff(vae_sparsity_weight=-1.0)


def test_generation_rows_have_their_own_target_scale(model):
    module = model.module
    assert module.generation_std.shape == (module.d_z,)
    # nothing observed: the whole latent is the residual, so its scale is larger than an imputation's
    assert (module.generation_std > module.residual_std).all()
    # the default scaling is one per latent dimension: the per-taxon buffers stay the identity
    assert not module.generation_loc.any() and (module.generation_scale == 1).all()


def test_token_generation_scaling_standardises_each_taxon(model, table, tmp_path):
    import copy

    from pydepmicro.model import _data

    module = copy.deepcopy(model.module)  # the fixture is shared
    prep = _data.prepare(table, scale=model.hparams["scale"], log_base=model.hparams["log_base"])
    empty = torch.zeros_like(prep.y)
    with torch.no_grad():
        z0 = module.encode(prep.y, prep.observed)
        tc_gen = module.token_condition(empty, empty > 0)
        tc_imp = module.token_condition(prep.y, prep.observed)
        before_imp = module.to_target(z0, tc_imp)
        module.generation_scaling = "token"
        module.set_residual_scale(z0, tc_gen)
        target = module.to_target(z0, tc_gen)
        # each taxon's generation target has mean 0 and sd 1 over the samples; the map inverts
        assert torch.allclose(target.mean(0), torch.zeros_like(target[0]), atol=1e-4)
        assert torch.allclose(target.std(0), torch.ones_like(target[0]), atol=1e-3)
        assert torch.allclose(module.from_target(target, tc_gen), z0, atol=1e-4)
        assert module.generation_loc.abs().max() > 0.05  # the taxa were not centred before
        # imputation rows are untouched by it (the imputation residual scale is not recomputed here)
        assert torch.equal(module.to_target(z0, tc_imp), before_imp)
    token = DepMicroDiff(metadata=False, device="cpu", generation_scaling="token", **TINY).fit(
        table, seed=0, vae_steps=20, dat_steps=20, progress=False)
    token.save(tmp_path / "tok")
    back = DepMicroDiff.load(tmp_path / "tok", device="cpu")
    assert back.module.generation_scaling == "token"
    assert torch.equal(back.module.generation_loc, token.module.generation_loc)
    assert np.array_equal(back.generate(5, sampler="ddim:4", seed=1, progress=False).counts,
                          token.generate(5, sampler="ddim:4", seed=1, progress=False).counts)
    with pytest.raises(InvalidOptionError, match="generation_scaling"):
        DepMicroDiff(generation_scaling="taxon")


def test_generation_calibration_reproduces_prevalence_from_real_latents(model, table):
    from pydepmicro.model import _data

    module = model.module
    prep = _data.prepare(table, scale=model.hparams["scale"], log_base=model.hparams["log_base"])
    with torch.no_grad():
        module.calibrate_generation(prep.y, prep.observed)
        decoded = module.decode(module.encode(prep.y, prep.observed), calibrated=True)
    real = ((prep.y > 0) & prep.observed).float().mean(0)
    assert torch.allclose(decoded["presence_prob"].mean(0), real, atol=2e-3)
    assert (module.abundance_sd > 0).all() and torch.isfinite(module.abundance_sd).all()
    # uncalibrated decoding is a different (imputation-trained) presence
    assert not torch.allclose(module.decode(module.encode(prep.y, prep.observed))["presence_prob"].mean(0), real,
                              atol=2e-3)


# ---------------------------------------------------------------------- DepMicroDiff.generate


def test_generate_draws_sparse_count_tables(model, table):
    synth = model.generate(60, seed=1, progress=False)
    assert synth.shape == (60, table.n_taxa) and list(synth.taxa_ids) == list(map(str, table.taxa_ids))
    assert synth.sample_ids[0] == "synthetic_01" and synth.sample_ids.is_unique
    counts = synth.counts
    assert np.isfinite(counts).all() and (counts >= 0).all() and np.array_equal(counts, np.rint(counts))
    assert (counts.sum(1) > 0).all()  # no empty sample
    assert 0.0 < synth.zero_fraction < 1.0
    # read depths come from the training table's range
    lib = np.nansum(table.counts, 1)
    assert lib.min() * 0.9 <= counts.sum(1).min() and counts.sum(1).max() <= lib.max() * 1.1 + table.n_taxa
    # the prevalence of each taxon follows the real one
    real = (np.nan_to_num(table.counts) > 0).mean(0)
    assert np.corrcoef(real, (counts > 0).mean(0))[0, 1] > 0.8


def test_generate_is_seeded(model):
    a = model.generate(20, seed=5, progress=False).counts
    b = model.generate(20, seed=5, progress=False).counts
    c = model.generate(20, seed=6, progress=False).counts
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_generate_with_a_fixed_library_size(model):
    synth = model.generate(10, library_size=5000, seed=0, progress=False)
    # closure to 5000 reads, then rounding and at least one read per present taxon
    assert np.all(np.abs(synth.counts.sum(1) - 5000) <= synth.n_taxa)
    with pytest.raises(InvalidOptionError, match="library_size"):
        model.generate(3, library_size=[10, 20], progress=False)
    with pytest.raises(InvalidOptionError, match="library_size"):
        model.generate(3, library_size=0, progress=False)


def test_generate_draws_empty_samples_at_the_training_tables_share(table):
    """A table with empty samples (TCMA STAD: 39%) records their share; generate draws that share,
    and leaves the other samples as they are without empty ones."""
    counts = table.counts.copy()
    counts[:20] = 0.0  # 20 of 80 samples without reads: never trained on
    with pytest.warns(UserWarning, match="no observed counts"):
        sparse = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(
            type(table)(counts, table.sample_ids, table.taxa_ids), seed=0, vae_steps=20, dat_steps=20,
            progress=False)
    assert sparse.training["fit"]["empty_sample_fraction"] == 0.25
    synth = sparse.generate(400, sampler="ddim:4", seed=3, progress=False).counts
    empty = synth.sum(1) == 0
    assert 0.18 < empty.mean() < 0.32
    none = sparse.generate(400, sampler="ddim:4", seed=3, empty_fraction=0, progress=False).counts
    assert (none.sum(1) > 0).all() and np.array_equal(none[~empty], synth[~empty])
    every_other = sparse.generate(400, sampler="ddim:4", seed=3, empty_fraction=0.6, progress=False).counts
    assert 0.5 < (every_other.sum(1) == 0).mean() < 0.7
    for bad in (1.0, -0.1, float("nan"), "half"):
        with pytest.raises(InvalidOptionError, match="empty_fraction"):
            sparse.generate(3, empty_fraction=bad, progress=False)


def test_generated_depth_follows_richness_as_in_the_training_table(table):
    """Deep samples show more taxa; generated samples take depths from real ones as rich as they are."""
    from pydepmicro.model._sampling import depth_by_richness, draw_depths

    rich = np.repeat(np.arange(1, 11), 20)
    lib = 10.0 ** (rich / 2) * np.random.default_rng(0).uniform(0.8, 1.25, rich.size)  # depth grows with richness
    by = depth_by_richness(lib, rich, n_bins=10)
    assert len(by["percentiles"]) == len(by["edges"]) - 1 == 10
    drawn = draw_depths(np.array([1, 1, 10, 10]), by, np.random.default_rng(1))
    assert (drawn[:2] < 10 ** 0.7).all() and (drawn[2:] > 10 ** 4.8).all()
    # a table whose depth grows with richness: the model records it and generates it
    counts = np.nan_to_num(table.counts)
    present = (counts > 0).sum(1)
    depth = 10.0 ** (1 + 3 * (present - present.min()) / max(1, np.ptp(present)))
    steep = type(table)(counts / counts.sum(1, keepdims=True) * depth[:, None], table.sample_ids, table.taxa_ids)
    model = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(steep, seed=0, vae_steps=60, dat_steps=40,
                                                                    progress=False)
    synth = model.generate(300, sampler="ddim:4", seed=0, progress=False).counts
    r_synth = np.corrcoef(np.log(synth.sum(1)), (synth > 0).sum(1))[0, 1]
    assert r_synth > 0.5, r_synth
    # without the record (older model folders) depth is drawn apart from richness
    del model.training["fit"]["library_size_by_richness"]
    flat = model.generate(300, sampler="ddim:4", seed=0, progress=False).counts
    assert abs(np.corrcoef(np.log(flat.sum(1)), (flat > 0).sum(1))[0, 1]) < 0.3


def test_generate_survives_save_and_load(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = DepMicroDiff.load(tmp_path / "m", device="cpu")
    assert np.array_equal(loaded.generate(15, seed=2, progress=False).counts,
                          model.generate(15, seed=2, progress=False).counts)


def test_generate_refuses_what_it_cannot_do(model, table):
    with pytest.raises(InvalidOptionError, match="how many"):
        model.generate(progress=False)
    with pytest.raises(InvalidOptionError, match="vae"):
        model.generate(3, sampler="vae", progress=False)
    with pytest.raises(InvalidOptionError, match="without metadata"):
        model.generate(meta=table.sample_meta.iloc[:3], progress=False)
    with pytest.raises(InvalidValueError, match="not fitted"):
        DepMicroDiff(device="cpu").generate(3)
    plain = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, seed=0, vae_steps=5, dat_steps=5,
                                                                    generate_fraction=0.0, progress=False)
    with pytest.raises(InvalidValueError, match="without generation examples"):
        plain.generate(3, progress=False)


def test_old_model_folders_load_and_say_they_cannot_generate(model, table, tmp_path):
    """A folder saved before generation existed has no generation_std and no generate_fraction."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "old"
    model.save(folder)
    state = load_file(str(folder / "model.safetensors"))
    del state["generation_std"]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt", "kind": "depmicrodiff"})
    config = json.loads((folder / "config.json").read_text())
    del config["training"]["fit"]["generate_fraction"]
    (folder / "config.json").write_text(json.dumps(config))
    old = DepMicroDiff.load(folder, device="cpu")
    part = table.subset(samples=table.sample_ids[:10])
    assert old.impute(part, draws=0, progress=False).table.shape == (10, 15)
    with pytest.raises(InvalidValueError, match="without generation examples"):
        old.generate(3, progress=False)


def test_conditional_generation_follows_metadata_rows(table, tiny_model_dir):
    # without the metadata base guidance acts on all of the metadata's effect (0 = unconditional)
    model = DepMicroDiff(text_encoder=str(tiny_model_dir), device="cpu", metadata_base=False, **TINY).fit(
        table, seed=0, vae_steps=20, dat_steps=20, progress=False)
    assert model.metadata_columns
    meta = table.sample_meta.iloc[:7].copy()
    meta.index = [f"new_{i}" for i in range(7)]
    synth = model.generate(meta=meta, seed=0, progress=False)
    assert list(synth.sample_ids) == list(meta.index)
    assert list(synth.sample_meta.columns) == list(meta.columns)
    unconditional = model.generate(7, seed=0, progress=False).counts
    assert not np.array_equal(synth.counts, unconditional)  # the metadata reaches the denoiser
    with pytest.raises(InvalidOptionError, match="7 rows"):
        model.generate(5, meta=meta, progress=False)
    with pytest.raises(IdMismatchError):
        model.generate(meta=meta.drop(columns=[model.metadata_columns[0]]), progress=False)
    with pytest.raises(InvalidValueError, match="no rows"):
        model.generate(meta=meta.iloc[:0], progress=False)
    # classifier-free guidance: 0 is the unconditional draw (same stream), 1 the plain conditional one
    # (the default), above 1 moves the samples further along the metadata's effect
    free = model.generate(meta=meta, seed=0, progress=False, guidance=0.0).counts
    np.testing.assert_array_equal(free, unconditional)
    np.testing.assert_array_equal(model.generate(meta=meta, seed=0, progress=False, guidance=1.0).counts, synth.counts)
    strong = model.generate(meta=meta, seed=0, progress=False, guidance=4.0).counts
    assert not np.array_equal(strong, synth.counts)
    with pytest.raises(InvalidOptionError, match="guidance needs metadata"):
        model.generate(7, seed=0, progress=False, guidance=2.0)
    with pytest.raises(InvalidOptionError, match="guidance"):
        model.generate(meta=meta, progress=False, guidance=-1.0)


# ---------------------------------------------------------------------- depmicro generate


def test_cli_generate(model, tmp_path):
    model.save(tmp_path / "m")
    out = tmp_path / "synth.tsv"
    runner = CliRunner()
    res = runner.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-n", "12", "-o", str(out), "--quiet",
                              "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "generated 12 samples x 15 taxa (unconditional)" in res.output
    back = read_table(out)
    assert back.shape == (12, 15)
    assert np.array_equal(back.counts, model.generate(12, seed=3, progress=False).counts)
    again = runner.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-n", "12", "-o", str(out)])
    assert again.exit_code != 0 and "--force" in again.output
    none = runner.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "x.tsv")])
    assert none.exit_code != 0 and "how many" in none.output and not (tmp_path / "x.tsv").exists()
    half = runner.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-n", "30", "-o", str(tmp_path / "h.tsv"),
                               "--empty-fraction", "0.5", "--quiet"])
    assert half.exit_code == 0, half.output
    back = read_table(tmp_path / "h.tsv")  # empty samples are written and read back
    assert back.shape == (30, 15) and 5 < (back.counts.sum(1) == 0).sum() < 25
    bad = runner.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-n", "3", "-o", str(tmp_path / "b.tsv"),
                              "--empty-fraction", "1"])
    assert bad.exit_code != 0 and "empty-fraction" in bad.output and not (tmp_path / "b.tsv").exists()


def test_cli_generate_with_metadata_file_and_biom_output(table, tiny_model_dir, tmp_path):
    model = DepMicroDiff(text_encoder=str(tiny_model_dir), device="cpu", **TINY).fit(table, seed=0, vae_steps=10,
                                                                                      dat_steps=10, progress=False)
    model.save(tmp_path / "m")
    meta = table.sample_meta.iloc[:4]
    meta.to_csv(tmp_path / "meta.csv")
    out = tmp_path / "synth.biom"
    res = CliRunner().invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--meta", str(tmp_path / "meta.csv"),
                                   "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "conditioned on" in res.output
    back = read_table(out)
    assert list(back.sample_ids) == [str(i) for i in meta.index]
    guided = CliRunner().invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--meta", str(tmp_path / "meta.csv"),
                                      "-o", str(tmp_path / "g.tsv"), "--quiet", "--guidance", "3"])
    assert guided.exit_code == 0, guided.output
    assert "guidance 3" in guided.output
    lost = CliRunner().invoke(cli, ["generate", "--model", str(tmp_path / "m"), "-n", "4", "-o", str(tmp_path / "l.tsv"),
                                    "--guidance", "3"])
    assert lost.exit_code != 0 and "--meta" in lost.output and not (tmp_path / "l.tsv").exists()


def test_generated_table_feeds_the_evaluation(model, table, tmp_path):
    synth = model.generate(40, seed=0, progress=False)
    write_table(synth, tmp_path / "s.tsv")
    write_table(table.with_counts(np.nan_to_num(table.counts)), tmp_path / "r.tsv")
    res = CliRunner().invoke(cli, ["evaluate-generation", str(tmp_path / "r.tsv"), str(tmp_path / "s.tsv"), "-o",
                                   str(tmp_path / "ev"), "--permutations", "9", "--no-unifrac"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n_synthetic"] == 40 and 0 <= metrics["classifier"]["auroc"] <= 1


def test_a_generation_model_generates_and_refuses_to_impute(table):
    gen_only = DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, seed=0, vae_steps=10, dat_steps=10,
                                                                      generate_fraction=1.0, progress=False)
    assert gen_only.generate(5, sampler="ddim:3", progress=False).shape == (5, table.n_taxa)
    with pytest.raises(InvalidValueError, match="generation model"):
        gen_only.impute(table, progress=False)
    with pytest.raises(InvalidOptionError, match="generate_fraction"):
        DepMicroDiff(metadata=False, device="cpu", **TINY).fit(table, generate_fraction=1.5, progress=False)
