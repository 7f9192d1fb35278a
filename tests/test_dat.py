"""AR block sizes, the DAT attention mask (appendix worked example) and the transformer module."""

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import torch.nn.functional as F

from pydepmicro.nn import (
    DependencyAwareTransformer,
    ar_block_sizes,
    block_ids,
    dat_attention_mask,
    dat_layout,
    mask_reachability,
    to_additive_mask,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# (1) Algorithm 1: block sizes


@pytest.mark.parametrize("s", [1, 2, 3, 7, 10, 33, 100, 512])
@pytest.mark.parametrize("alpha", [1e-6, 0.3, 0.9, 1.0])
def test_block_sizes_sum_and_decay(s, alpha):
    sizes = ar_block_sizes(s, alpha)
    assert sum(sizes) == s and all(x >= 1 for x in sizes)
    assert len(sizes) == max(1, round(s**0.5))
    assert sizes == sorted(sizes, reverse=True)  # non-increasing


def test_block_sizes_rules():
    assert ar_block_sizes(1, 0.9) == [1]
    assert ar_block_sizes(7, 0.9) == [3, 2, 2]
    assert ar_block_sizes(12, 1.0, 4) == [3, 3, 3, 3]  # alpha = 1: equal blocks
    assert ar_block_sizes(10, 1.0, 3) == [4, 3, 3]  # ... larger ones first when s % K != 0
    assert ar_block_sizes(10, 1e-9, 3) == [8, 1, 1]  # alpha -> 0: first block takes the rest
    assert ar_block_sizes(10, 0.5, 1) == [10]  # one block: no autoregression
    assert ar_block_sizes(5, 0.5, 5) == [1, 1, 1, 1, 1]
    assert ar_block_sizes(7, 1.2, 3) == [2, 2, 3]  # alpha > 1 grows: the appendix example
    # exponential: with many tokens, consecutive ratios approach alpha
    sizes = ar_block_sizes(10_000, 0.8, 6)
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    assert all(abs(r - 0.8) < 0.01 for r in ratios)


@pytest.mark.parametrize("bad", [dict(s=0), dict(s=5, alpha=0.0), dict(s=5, alpha=float("nan")), dict(s=5, n_blocks=6), dict(s=5, n_blocks=0)])
def test_block_sizes_bad_input(bad):
    with pytest.raises(ValueError):
        ar_block_sizes(**{"alpha": 0.9, **bad})


def test_block_ids_and_layout():
    assert block_ids([2, 2, 3]).tolist() == [0, 0, 1, 1, 2, 2, 2]
    lay = dat_layout([2, 2, 3], n_cond=2)
    assert (lay.n_cond, lay.n_taxa, lay.n_clean, lay.length) == (2, 7, 4, 13)
    assert (lay.cond, lay.clean, lay.noisy) == (slice(0, 2), slice(2, 6), slice(6, 13))
    assert lay.kind.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]
    assert lay.block.tolist() == [-1, -1, 0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2]
    assert lay.taxon.tolist() == [-1, -1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6]
    assert lay.block_slice(2) == slice(4, 7)


# ---------------------------------------------------------------------------------------------
# (2) Algorithm 2: the appendix worked example, s = 7, c = 2, sz = [2, 2, 3] -> 13 x 13
#
# positions: 0-1 conditions C0 C1 | 2-3 clean taxa 0,1 (block 0) | 4-5 clean taxa 2,3 (block 1) |
#            6-7 noisy taxa 0,1 (b0) | 8-9 noisy taxa 2,3 (b1) | 10-12 noisy taxa 4,5,6 (b2)
# 1 = row may attend to column.

#                    C0 C1 c0 c1 c2 c3 n0 n1 n2 n3 n4 n5 n6
MASK_NO_DEP = [
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # C0: conditions only
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # C1
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # clean 0 (b0): C + clean b0
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # clean 1 (b0)
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # clean 2 (b1): C + clean b0, b1
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # clean 3 (b1)
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],  # noisy 0 (b0): C + noisy b0
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],  # noisy 1 (b0)
    [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0],  # noisy 2 (b1): C + clean b0 + noisy b1
    [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0],  # noisy 3 (b1)
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1],  # noisy 4 (b2): C + clean b0, b1 + noisy b2
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1],  # noisy 5 (b2)
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1],  # noisy 6 (b2)
]

# Dep[i, j] = taxon i depends on taxon j:
#   (4, 1) b2 -> b0 opens noisy 4 -> noisy 1 (row 10, col 7)
#   (3, 0) b1 -> b0 opens noisy 3 -> noisy 0 (row 9, col 6)
#   (1, 5) b0 -> b2 and (2, 4) b1 -> b2 point to later blocks: stay closed (would leak)
#   (5, 6) same block: already open
DEP_PAIRS = [(4, 1), (3, 0), (1, 5), (2, 4), (5, 6)]

#                    C0 C1 c0 c1 c2 c3 n0 n1 n2 n3 n4 n5 n6
MASK_DEP_OPEN = [
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],  # noisy 1: Dep(1, 5) is a later block: closed
    [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0],  # noisy 2: Dep(2, 4) is a later block: closed
    [1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0],  # noisy 3 -> noisy 0 opened
    [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1],  # noisy 4 -> noisy 1 opened
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1],
]

# dep_mode="restrict": noisy tokens see an earlier block's clean token only where Dep says so
#                    C0 C1 c0 c1 c2 c3 n0 n1 n2 n3 n4 n5 n6
MASK_DEP_RESTRICT = [
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
    [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0],  # noisy 3 -> clean 0
    [1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1],  # noisy 4 -> clean 1
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
]


def example_dep():
    dep = torch.zeros(7, 7, dtype=torch.bool)
    for i, j in DEP_PAIRS:
        dep[i, j] = True
    return dep


def as_bool(rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_worked_example_without_dep():
    mask = dat_attention_mask([2, 2, 3], n_cond=2)
    assert mask.dtype == torch.bool and mask.shape == (13, 13)
    assert torch.equal(mask, as_bool(MASK_NO_DEP))
    # Dep all False is the same as no Dep
    assert torch.equal(dat_attention_mask([2, 2, 3], 2, torch.zeros(7, 7, dtype=torch.bool)), mask)


def test_worked_example_with_dep():
    assert torch.equal(dat_attention_mask([2, 2, 3], 2, example_dep()), as_bool(MASK_DEP_OPEN))
    restrict = dat_attention_mask([2, 2, 3], 2, example_dep(), dep_mode="restrict")
    assert torch.equal(restrict, as_bool(MASK_DEP_RESTRICT))
    # restrict with Dep all True is the pure AR mask
    full = torch.ones(7, 7, dtype=torch.bool)
    assert torch.equal(dat_attention_mask([2, 2, 3], 2, full, dep_mode="restrict"), as_bool(MASK_NO_DEP))


def test_one_block_leaves_nothing_for_dep_to_open():
    """With one AR block (n_blocks=1, the no_ar ablation) every noisy token already sees every other, so
    the mask is the same with and without Dep, in both modes: the dependency graph has no effect."""
    dep = torch.rand(7, 7, generator=torch.Generator().manual_seed(0)) > 0.5
    for mode in ("open", "restrict"):
        with_dep = dat_attention_mask([7], 2, dep, dep_mode=mode)
        assert torch.equal(with_dep, dat_attention_mask([7], 2, None, dep_mode=mode))
        assert with_dep[2:, :].all()  # taxa see the conditions and each other
    # with several blocks the same Dep does change the mask
    assert not torch.equal(dat_attention_mask([2, 2, 3], 2, dep), dat_attention_mask([2, 2, 3], 2, None))


def test_worked_example_c0_is_the_lower_right_submatrix():
    mask = dat_attention_mask([2, 2, 3], n_cond=0, dep=example_dep())
    assert torch.equal(mask, as_bool(MASK_DEP_OPEN)[2:, 2:])


def test_batched_dep_and_cond_padding():
    deps = torch.stack([example_dep(), torch.zeros(7, 7, dtype=torch.bool)])
    mask = dat_attention_mask([2, 2, 3], 2, deps)
    assert mask.shape == (2, 13, 13)
    assert torch.equal(mask[0], as_bool(MASK_DEP_OPEN)) and torch.equal(mask[1], as_bool(MASK_NO_DEP))
    valid = torch.tensor([[True, False], [False, False]])
    mask = dat_attention_mask([2, 2, 3], 2, cond_valid=valid)
    assert mask.shape == (2, 13, 13)
    assert not mask[0, :, 1][torch.arange(13) != 1].any() and mask[0, 1, 1]  # padding: only itself
    assert mask[0, :, 0].all()
    assert mask.any(-1).all()  # no empty row


def test_additive_mask_matches_boolean_in_sdpa():
    mask = dat_attention_mask([2, 2, 3], 2, example_dep())
    add = to_additive_mask(mask)
    assert add.dtype == torch.float32
    assert torch.equal(add == 0, mask) and torch.isinf(add[~mask]).all() and (add[~mask] < 0).all()
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 13, 8, generator=g) for _ in range(3))
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    b = F.scaled_dot_product_attention(q, k, v, attn_mask=add)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("mode", ["open", "restrict"])
@pytest.mark.parametrize("sizes", [[1], [3], [2, 2, 3], [4, 1, 1, 1], [1, 2, 3, 4]])
def test_no_leak_of_ground_truth_through_any_depth(mode, sizes):
    """After any number of layers, a noisy token of block k depends on no clean token of a block
    >= k and on no noisy token of a block > k, whatever Dep is (random, all True)."""
    s = sum(sizes)
    g = torch.Generator().manual_seed(len(sizes))
    for dep in (torch.rand(s, s, generator=g) < 0.4, torch.ones(s, s, dtype=torch.bool)):
        mask = dat_attention_mask(sizes, 2, dep, dep_mode=mode)
        lay = dat_layout(sizes, 2)
        reach = mask_reachability(mask, n_layers=len(sizes) + 3)
        kq, kk = lay.kind[:, None], lay.kind[None, :]
        bq, bk = lay.block[:, None], lay.block[None, :]
        leak = (kq == 2) & (((kk == 1) & (bk >= bq)) | ((kk == 2) & (bk > bq)))
        assert not (reach & leak).any()
        # and the conditions are always visible, and (open mode) all earlier clean tokens
        assert reach[:, :2].all()
        if mode == "open":
            assert reach[(kq == 2) & (kk == 1) & (bk < bq)].all()


# ---------------------------------------------------------------------------------------------
# (3)-(4) the module


def small_model(**kw):
    torch.manual_seed(0)
    args = dict(d_z=3, d_model=16, n_layers=3, n_heads=2, d_cond=5, d_token_cond=4, n_taxa=7)
    args.update(kw)
    return DependencyAwareTransformer(**args).eval()


def inputs(B=2, s=7, c=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(
        z_noisy=torch.randn(B, s, 3, generator=g),
        z_clean=torch.randn(B, s, 3, generator=g),
        cond=torch.randn(B, c, 5, generator=g),
        token_cond=torch.randn(B, s, 4, generator=g),
        t=torch.randint(0, 1000, (B,), generator=g),
    )


@pytest.mark.parametrize("mode", ["open", "restrict"])
def test_perturbation_matches_mask_reachability(mode):
    """Changing an input an output must not see (per the mask, through all layers) leaves that
    output exactly unchanged; changing one it may see changes it."""
    sizes = [2, 2, 3]
    model = small_model(dep_mode=mode)
    dep = example_dep()
    x = inputs()
    lay = dat_layout(sizes, 2)
    mask = model.attention_mask(sizes, 2, dep)
    reach = mask_reachability(mask, n_layers=3)[lay.noisy]  # (7, 13)
    direct = mask[lay.noisy]
    with torch.no_grad():
        base = model(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=x["cond"],
                     token_cond=x["token_cond"], dep=dep)  # fmt: skip
        for p in range(lay.length):
            y = {k: v.clone() for k, v in x.items()}
            kind, j = int(lay.kind[p]), int(lay.taxon[p])
            if kind == 0:
                y["cond"][:, p] += 1.0
            elif kind == 1:
                y["z_clean"][:, j] += 1.0
            else:
                y["z_noisy"][:, j] += 1.0
            out = model(y["z_noisy"], y["t"], block_sizes=sizes, z_clean=y["z_clean"], cond=y["cond"],
                        token_cond=y["token_cond"], dep=dep)  # fmt: skip
            for q in range(7):
                if direct[q, p]:  # seen in every layer: a clear change
                    assert not torch.allclose(out[:, q], base[:, q], atol=1e-3), (q, p)
                elif reach[q, p]:  # seen through a chain of layers: some change
                    assert not torch.equal(out[:, q], base[:, q]), (q, p)
                else:
                    assert torch.equal(out[:, q], base[:, q]), (q, p)
    # the test covers both outcomes
    assert reach.any() and not reach.all()


def test_later_blocks_are_placeholders_at_inference():
    """Block 1's output ignores block 1's and 2's clean slots, block 2's noisy tokens and their
    timesteps and per-taxon conditioning: they may hold anything while block 1 is denoised."""
    sizes = [2, 2, 3]
    model = small_model()
    x = inputs()
    t = torch.full((2, 7), 400)
    with torch.no_grad():
        a = model(x["z_noisy"], t, block_sizes=sizes, z_clean=x["z_clean"], cond=x["cond"], token_cond=x["token_cond"])
        zc, zn, tc, t2 = x["z_clean"].clone(), x["z_noisy"].clone(), x["token_cond"].clone(), t.clone()
        zc[:, 2:] = 0.0
        zn[:, 4:] = torch.randn(2, 3, 3)
        tc[:, 4:] = 9.0
        t2[:, 4:] = 999
        b = model(zn, t2, block_sizes=sizes, z_clean=zc, cond=x["cond"], token_cond=tc)
    assert torch.equal(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_padding_condition_tokens_are_ignored():
    sizes = [2, 2, 3]
    model = small_model()
    x = inputs()
    valid = torch.tensor([[True, False], [True, False]])
    with torch.no_grad():
        a = model(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=x["cond"],
                  cond_valid=valid, token_cond=x["token_cond"])  # fmt: skip
        cond = x["cond"].clone()
        cond[:, 1] = 100.0
        b = model(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=cond,
                  cond_valid=valid, token_cond=x["token_cond"])  # fmt: skip
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "sizes,c,dep",
    [([2, 2, 3], 0, "none"), ([2, 2, 3], 0, "false"), ([2, 2, 3], 0, "true"), ([7], 0, "true"),
     ([3, 2, 2], 3, "true"), ([1], 0, "none"), ([1, 1, 1, 1, 1, 1, 1], 2, "true")],
)  # fmt: skip
def test_shapes_no_nan_and_gradients(sizes, c, dep):
    s = sum(sizes)
    model = small_model(n_taxa=10).train()
    x = inputs(B=3, s=s, c=c)
    dep_t = {"none": None, "false": torch.zeros(s, s, dtype=torch.bool), "true": torch.ones(s, s, dtype=torch.bool)}[dep]
    z_noisy = x["z_noisy"].requires_grad_(True)
    cond = x["cond"] if c else None
    out = model(z_noisy, x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=cond,
                token_cond=x["token_cond"], dep=dep_t)  # fmt: skip
    assert out.shape == (3, s, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert torch.isfinite(z_noisy.grad).all() and z_noisy.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        if name.startswith("cond_in") and not c:
            continue
        if name == "kind_embedding.weight":
            continue  # rows of unused kinds get no gradient
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_taxon_identity_options_and_per_token_t():
    sizes = [3, 4]
    x = inputs(s=7, c=0)
    m = small_model(d_token_cond=0, d_cond=0, n_taxa=0, d_taxon=6)
    emb = torch.randn(7, 6)
    out = m(x["z_noisy"], 5, block_sizes=sizes, z_clean=x["z_clean"], taxon_emb=emb)
    assert out.shape == (2, 7, 3)
    out_b = m(x["z_noisy"], torch.full((2, 7), 5), block_sizes=sizes, z_clean=x["z_clean"], taxon_emb=emb[None].expand(2, -1, -1))
    assert torch.allclose(out, out_b, atol=1e-6)
    m2 = small_model(d_token_cond=0, d_cond=0, n_taxa=20)
    idx = torch.tensor([4, 9, 0, 1, 2, 3, 19])
    a = m2(x["z_noisy"], 5, block_sizes=sizes, z_clean=x["z_clean"], taxon_index=idx)
    b = m2(x["z_noisy"], 5, block_sizes=sizes, z_clean=x["z_clean"])  # arange(7)
    assert not torch.allclose(a, b)


def test_precomputed_mask_and_config_round_trip():
    sizes = [2, 2, 3]
    model = small_model()
    x = inputs()
    mask = model.attention_mask(sizes, 2, example_dep())
    with torch.no_grad():
        a = model(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=x["cond"],
                  token_cond=x["token_cond"], dep=example_dep())  # fmt: skip
        b = model(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"][:, :4], cond=x["cond"],
                  token_cond=x["token_cond"], attn_mask=mask)  # fmt: skip
    assert torch.equal(a, b)
    again = type(model)(**json.loads(json.dumps(model.config)))
    again.load_state_dict(model.state_dict())
    again.eval()
    with torch.no_grad():
        c = again(x["z_noisy"], x["t"], block_sizes=sizes, z_clean=x["z_clean"], cond=x["cond"],
                  token_cond=x["token_cond"], dep=example_dep())  # fmt: skip
    assert torch.equal(a, c)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(block_sizes=[2, 2, 2]), "sum to"),
        (dict(block_sizes=[2, 2, 3], z_clean=None), "z_clean"),
        (dict(block_sizes=[2, 2, 3], token_cond=None), "token_cond"),
        (dict(block_sizes=[2, 2, 3], t=torch.zeros(3, dtype=torch.long)), "t must"),
    ],
)
def test_bad_calls_raise(kw, msg):
    model = small_model()
    x = inputs()
    args = {**x, **kw}
    with pytest.raises(ValueError, match=msg):
        model(args.pop("z_noisy"), args.pop("t"), **args)


def test_bad_hyperparameters():
    with pytest.raises(ValueError):
        DependencyAwareTransformer(d_z=3, d_model=10, n_heads=3)
    with pytest.raises(ValueError):
        DependencyAwareTransformer(d_z=3, dep_mode="both")
    with pytest.raises(TypeError):
        DependencyAwareTransformer(3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_backward():
    dev = torch.device("cuda")
    model = small_model().to(dev).train()
    x = {k: v.to(dev) for k, v in inputs().items()}
    out = model(x["z_noisy"], x["t"], block_sizes=[2, 2, 3], z_clean=x["z_clean"], cond=x["cond"],
                token_cond=x["token_cond"], dep=example_dep().to(dev))  # fmt: skip
    assert out.device.type == "cuda" and torch.isfinite(out).all()
    out.square().mean().backward()
    cpu = small_model().eval()
    model.eval()
    with torch.no_grad():
        a = model(x["z_noisy"], x["t"], block_sizes=[2, 2, 3], z_clean=x["z_clean"], cond=x["cond"],
                  token_cond=x["token_cond"], dep=example_dep())  # dep on CPU is moved
        b = cpu(*(v.cpu() for v in (x["z_noisy"], x["t"])), block_sizes=[2, 2, 3], z_clean=x["z_clean"].cpu(),
                cond=x["cond"].cpu(), token_cond=x["token_cond"].cpu(), dep=example_dep())  # fmt: skip
    assert torch.allclose(a.cpu(), b, atol=1e-4)
