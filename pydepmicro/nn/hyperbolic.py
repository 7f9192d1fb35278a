"""Poincare-ball embeddings of a taxonomy (Nickel & Kiela 2017), as features of the taxon tokens.

A taxonomy is a tree, and trees embed in hyperbolic space with little distortion in a few
dimensions: the general ranks sit near the centre of the ball, the taxa near its rim, and the
hyperbolic distance between two taxa grows with the depth of their last common ancestor. The
model adds a linear map of these coordinates to the taxon tokens of the denoiser
(``DepMicroDiff(taxonomy_embedding="poincare")``; DESIGN.md "Generation").

Fitting (:func:`poincare_embedding`): every (ancestor, descendant) pair of the tree's transitive
closure is a positive pair; for each, ``negatives`` nodes unrelated to the ancestor are drawn, and
the loss is the softmax cross-entropy of ``-d(ancestor, descendant)`` against ``-d(ancestor, negative)``
with the Poincare distance::

    d(u, v) = arcosh(1 + 2 |u - v|^2 / ((1 - |u|^2)(1 - |v|^2)))

Optimised by Riemannian SGD (the Euclidean gradient scaled by (1 - |x|^2)^2 / 4, then projected back
inside the ball), with a burn-in at a tenth of the learning rate as in the paper. The network needs
Euclidean inputs, so :func:`log_map_zero` maps the points to the tangent space at the origin.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["poincare_distance", "poincare_embedding", "log_map_zero", "tree_pairs"]

_MAX_NORM = 1.0 - 1e-5


def poincare_distance(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hyperbolic distance between points of the unit ball, shapes (..., d) -> (...)."""
    sq = (u - v).pow(2).sum(-1)
    denom = (1 - u.pow(2).sum(-1)).clamp_min(1e-10) * (1 - v.pow(2).sum(-1)).clamp_min(1e-10)
    return torch.acosh((1 + 2 * sq / denom).clamp_min(1.0 + 1e-7))


def log_map_zero(x: np.ndarray) -> np.ndarray:
    """Tangent vectors at the origin of points of the ball (n, d): artanh(|x|) x / |x|."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    safe = np.maximum(norm, 1e-12)
    return np.arctanh(np.minimum(norm, _MAX_NORM)) * x / safe


def tree_pairs(tree) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Nodes of a skbio TreeNode (preorder), their ancestor-descendant pairs (m, 2) and a (n, n) bool
    matrix of related nodes (ancestor, descendant or self), used to draw negatives."""
    nodes = list(tree.preorder())
    index = {id(node): i for i, node in enumerate(nodes)}
    names = [node.name if node.name is not None else f"node_{i}" for i, node in enumerate(nodes)]
    related = np.eye(len(nodes), dtype=bool)
    pairs = []
    for i, node in enumerate(nodes):
        for anc in node.ancestors():
            j = index[id(anc)]
            pairs.append((j, i))
            related[i, j] = related[j, i] = True
    return names, np.asarray(pairs, dtype=np.int64).reshape(-1, 2), related


def poincare_embedding(tree, taxa_ids, *, dim: int = 8, epochs: int = 300, negatives: int = 10,
                       lr: float = 0.3, burn_in: int = 20, seed: int = 0) -> np.ndarray:
    """Coordinates (q, dim) in the Poincare ball of the tips ``taxa_ids`` of ``tree`` (skbio TreeNode).

    Full-batch Riemannian SGD over the transitive closure; deterministic for a seed.
    """
    names, pairs, related = tree_pairs(tree)
    position = {name: i for i, name in enumerate(names)}
    missing = [t for t in map(str, taxa_ids) if t not in position]
    if missing:
        raise ValueError(f"the tree lacks {len(missing)} taxa, e.g. {missing[:3]}")
    gen = torch.Generator().manual_seed(seed)
    n = len(names)
    x = (torch.rand(n, dim, generator=gen) * 2 - 1) * 1e-3
    if len(pairs):
        anc, desc = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])
        allowed = torch.as_tensor(~related[pairs[:, 0]], dtype=torch.float32)  # negatives: unrelated nodes
        allowed[allowed.sum(1) == 0] = 1.0  # a node related to all others: any node, harmlessly
        for epoch in range(epochs):
            neg = torch.multinomial(allowed, negatives, replacement=True, generator=gen)
            x.requires_grad_(True)
            u = x[anc][:, None, :]
            candidates = torch.cat([x[desc][:, None, :], x[neg]], dim=1)
            logits = -poincare_distance(u, candidates)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(anc), dtype=torch.long))
            (grad,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                step = lr * (0.1 if epoch < burn_in else 1.0) * len(anc) / n
                scale = (1 - x.pow(2).sum(-1, keepdim=True)).pow(2) / 4
                x = x - step * scale * grad
                norm = x.norm(dim=-1, keepdim=True)
                x = torch.where(norm >= _MAX_NORM, x / norm * (_MAX_NORM - 1e-5), x)
    rows = [position[str(t)] for t in taxa_ids]
    return x.detach()[rows].numpy().astype(np.float64)
