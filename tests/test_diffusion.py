"""LatentDiffusion (pydepmicro.nn.diffusion): AR order, conditioning tokens, truncated block sampling."""

from __future__ import annotations

import torch

from pydepmicro.nn.dat import DependencyAwareTransformer
from pydepmicro.nn.diffusion import LatentDiffusion
from pydepmicro.nn.vae import TaxonVAE
from pydepmicro.scheduler import DDIMScheduler

torch.set_num_threads(1)


def _module(q=9, sizes=(4, 3, 2), d_cond=0, dep_mode="open"):
    torch.manual_seed(0)
    vae = TaxonVAE(vocab=[f"t{i}" for i in range(q)], d_z=2, d_model=8, n_layers=1, n_heads=2)
    dat = DependencyAwareTransformer(d_z=2, d_model=16, n_layers=2, n_heads=2, d_cond=d_cond, d_token_cond=4,
                                     n_taxa=q, dep_mode=dep_mode)
    dep = torch.rand(q, q) < 0.5
    perm = torch.randperm(q)
    return LatentDiffusion(vae, dat, vae_index=torch.arange(q), ar_perm=perm, block_sizes=list(sizes), dep=dep).eval()


def test_ar_order_round_trip():
    m = _module()
    x = torch.randn(2, 9, 3)
    assert torch.equal(m.from_ar(m.to_ar(x)), x)


def test_token_condition_hides_missing_entries():
    m = _module()
    y = torch.rand(3, 9)
    obs = torch.rand(3, 9) > 0.3
    tc = m.token_condition(y, obs)
    assert tc.shape == (3, 9, 4)
    assert torch.equal(tc[..., 2], obs.float())
    assert (m.token_condition(y, obs)[~obs][:, 2:] == 0).all()
    y2 = torch.where(obs, y, torch.full_like(y, 123.0))  # a missing value must not matter
    assert torch.allclose(m.token_condition(y2, obs), tc)


def test_truncated_sequence_gives_block_outputs_of_the_full_sequence():
    """sample() drops the tokens of later blocks: they must not change an earlier block's output."""
    for dep_mode in ("open", "restrict"):
        m = _module(dep_mode=dep_mode)
        B, q = 2, 9
        tc = m.to_ar(torch.randn(B, q, 4))
        z_noisy, z_clean = torch.randn(B, q, 2), torch.randn(B, q, 2)
        full = m.dat(z_noisy, 500, block_sizes=m.block_sizes, z_clean=z_clean, taxon_index=m.ar_perm,
                     token_cond=tc, attn_mask=m.attention_mask(3, 0, None))
        end = sum(m.block_sizes[:2])
        cut = m.dat(z_noisy[:, :end], 500, block_sizes=m.block_sizes[:2], z_clean=z_clean[:, : m.block_sizes[0]],
                    taxon_index=m.ar_perm[:end], token_cond=tc[:, :end], attn_mask=m.attention_mask(2, 0, None))
        assert torch.allclose(full[:, :end], cut, atol=1e-5)


def test_sample_shapes_and_seed():
    m = _module()
    tc = torch.randn(3, 9, 4)
    scheds = []
    for _ in m.block_sizes:
        s = DDIMScheduler(num_train_timesteps=100)
        s.set_timesteps("ddim", num_inference_steps=4)
        scheds.append(s)
    a = m.sample(tc, scheds, generator=torch.Generator().manual_seed(1))
    b = m.sample(tc, scheds, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 9, 2) and torch.equal(a, b) and torch.isfinite(a).all()


def test_predict_mean_is_the_vae_guess_when_the_denoiser_predicts_no_correction():
    """With the residual target and a zero output layer (v = 0), the clean prediction from the
    noise mean is a zero residual: predict_mean returns the condition latent exactly."""
    m = _module()
    torch.nn.init.zeros_(m.dat.head.weight)
    torch.nn.init.zeros_(m.dat.head.bias)
    y, obs = torch.rand(3, 9), torch.rand(3, 9) > 0.3
    tc = m.token_condition(y, obs)
    sched = DDIMScheduler(num_train_timesteps=100, prediction_type="v_prediction")
    z = m.predict_mean(tc, sched)
    assert torch.allclose(z, tc[..., :2], atol=1e-6)


def test_predict_mean_is_deterministic_and_uses_earlier_blocks():
    m = _module()
    tc = torch.randn(3, 9, 4)
    sched = DDIMScheduler(num_train_timesteps=100)
    a, b = m.predict_mean(tc, sched), m.predict_mean(tc, sched)
    assert a.shape == (3, 9, 2) and torch.equal(a, b) and torch.isfinite(a).all()
    # a later block's estimate changes when an earlier block's condition changes (AR dependence)
    first = m.ar_perm[: m.block_sizes[0]]
    last = m.ar_perm[-m.block_sizes[-1]:]
    tc2 = tc.clone()
    tc2[:, first] += 1.0
    c = m.predict_mean(tc2, sched)
    assert not torch.allclose(a[:, last], c[:, last])


def test_metadata_base_recovers_a_linear_metadata_shift_and_touches_only_generation_rows():
    """fit_metadata_base: a shift of the latent that is linear in the mean metadata token is found
    (cross-validated R^2), then added to the condition latent of samples with nothing observed only,
    and not to samples without metadata."""
    m = _module(d_cond=3)
    g = torch.Generator().manual_seed(4)
    n, q = 200, 9
    cond = torch.randn(n, 2, 3, generator=g)
    valid = torch.ones(n, 2, dtype=torch.bool)
    empty = torch.zeros(n, q)
    before = m.token_condition(empty, empty > 0, cond, valid)
    assert torch.equal(before, m.token_condition(empty, empty > 0))  # nothing fitted: no shift
    planted = torch.randn(3, q, 2, generator=g)
    shift = torch.einsum("bc,cqd->bqd", cond.mean(1), planted)
    z0 = before[..., :2] + shift + 0.3 * torch.randn(n, q, 2, generator=g)
    fit = m.fit_metadata_base(z0, cond, valid)
    assert fit["r2_cv"] > 0.7 and fit["n"] == n
    got = m.metadata_base(cond, valid)
    assert torch.corrcoef(torch.stack([got.flatten(), (shift - shift.mean(0)).flatten()]))[0, 1] > 0.95
    after = m.token_condition(empty, empty > 0, cond, valid)
    assert torch.allclose(after[..., :2] - before[..., :2], got, atol=1e-5)
    # a sample with something observed keeps its latent; one without metadata gets no shift
    y, obs = torch.rand(n, q), torch.rand(n, q) > 0.3
    assert torch.equal(m.token_condition(y, obs, cond, valid), m.token_condition(y, obs))
    none = m.token_condition(empty, empty > 0, cond, torch.zeros_like(valid))
    assert torch.equal(none, before)
