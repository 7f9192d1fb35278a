"""Poincare embeddings of the taxonomy (issue 7) and their use as denoiser token features."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from pydepmicro.datasets import simulate  # noqa: E402
from pydepmicro.errors import InvalidOptionError, InvalidValueError  # noqa: E402
from pydepmicro.model import DepMicroDiff  # noqa: E402
from pydepmicro.nn.dat import DependencyAwareTransformer  # noqa: E402
from pydepmicro.nn.hyperbolic import log_map_zero, poincare_distance, poincare_embedding, tree_pairs  # noqa: E402

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=2,
            dependency="none", num_train_timesteps=50, metadata=False)


def _tree(newick="(((a,b)x,(c,d)y)p,((e,f)z)q)root;"):
    import io

    from skbio import TreeNode

    return TreeNode.read(io.StringIO(newick))


def test_poincare_distance_matches_the_closed_form():
    origin = torch.zeros(3)
    for r in (0.1, 0.5, 0.9):
        point = torch.tensor([r, 0.0, 0.0])
        assert float(poincare_distance(origin, point)) == pytest.approx(2 * np.arctanh(r), rel=1e-5)
    u, v = torch.tensor([0.3, -0.2]), torch.tensor([-0.1, 0.6])
    assert float(poincare_distance(u, v)) == pytest.approx(float(poincare_distance(v, u)))
    assert float(poincare_distance(u, u)) < 1e-3


def test_log_map_zero_keeps_direction_and_stretches_the_radius():
    x = np.array([[0.6, 0.0], [0.0, -0.3], [0.0, 0.0]])
    t = log_map_zero(x)
    assert np.allclose(np.linalg.norm(t[:2], axis=1), np.arctanh([0.6, 0.3]))
    assert np.allclose(t[0] / np.linalg.norm(t[0]), [1.0, 0.0]) and np.allclose(t[2], 0.0)


def test_tree_pairs_are_the_transitive_closure():
    names, pairs, related = tree_pairs(_tree("((a,b)x)root;"))
    named = {(names[i], names[j]) for i, j in pairs}
    assert named == {("root", "x"), ("root", "a"), ("root", "b"), ("x", "a"), ("x", "b")}
    a, b = names.index("a"), names.index("b")
    assert not related[a, b] and related[a, names.index("root")]


def test_embedding_puts_siblings_closer_than_cousins_and_is_seeded():
    tips = list("abcdef")
    emb = poincare_embedding(_tree(), tips, dim=4, epochs=400, seed=0)
    assert emb.shape == (6, 4) and (np.linalg.norm(emb, axis=1) < 1).all()
    d = poincare_distance(torch.tensor(emb)[:, None], torch.tensor(emb)[None]).numpy()
    assert d[0, 1] < d[0, 2] and d[2, 3] < d[2, 0] and d[4, 5] < d[4, 0]
    assert np.array_equal(emb, poincare_embedding(_tree(), tips, dim=4, epochs=400, seed=0))
    with pytest.raises(ValueError, match="lacks 1 taxa"):
        poincare_embedding(_tree(), ["a", "nope"], dim=2, epochs=1)


def test_dat_taxonomy_features_shape_checks():
    dat = DependencyAwareTransformer(d_z=2, d_model=8, n_layers=1, n_heads=2, n_taxa=3, d_taxonomy=4)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        dat.set_taxonomy_features(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="d_taxonomy=0"):
        DependencyAwareTransformer(d_z=2, d_model=8, n_layers=1, n_heads=2, n_taxa=3).set_taxonomy_features(
            torch.zeros(3, 4))
    # the features change the taxon tokens
    z = torch.randn(1, 3, 2)
    before = dat(z, 10, block_sizes=[3], taxon_index=torch.arange(3))
    dat.set_taxonomy_features(torch.randn(3, 4))
    assert not torch.allclose(before, dat(z, 10, block_sizes=[3], taxon_index=torch.arange(3)))


def test_model_with_poincare_taxonomy_saves_and_loads(tmp_path):
    table = simulate(40, 10, seed=2, zero_fraction=0.5).table  # simulate() attaches a taxonomy
    model = DepMicroDiff(taxonomy_embedding="poincare", taxonomy_dim=3, device="cpu", **TINY)
    model.fit(table, seed=0, vae_steps=10, dat_steps=10, progress=False)
    features = model.module.dat.taxonomy_features
    assert features.shape == (10, 3) and features.abs().sum() > 0
    model.save(tmp_path / "m")
    loaded = DepMicroDiff.load(tmp_path / "m", device="cpu")
    assert torch.equal(loaded.module.dat.taxonomy_features, features)
    bare = table.copy()
    bare.taxonomy = None
    with pytest.raises(InvalidValueError, match="needs the table's taxonomy"):
        DepMicroDiff(taxonomy_embedding="poincare", device="cpu", **TINY).fit(bare, vae_steps=2, dat_steps=2,
                                                                              progress=False)
    with pytest.raises(InvalidOptionError, match="taxonomy_embedding"):
        DepMicroDiff(taxonomy_embedding="lorentz")
