"""Shared fixtures: small tables made in code, and the TCMA data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pydepmicro.table import MicrobiomeTable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tcma_dir() -> Path | None:
    """../shared/data/tcma, or $PYDEPMICRO_TCMA; None when absent."""
    for candidate in (os.environ.get("PYDEPMICRO_TCMA"), REPO.parent / "shared" / "data" / "tcma"):
        if candidate and (Path(candidate) / "coad" / "counts_taxa_x_files.csv").exists():
            return Path(candidate)
    return None


@pytest.fixture
def tcma_root() -> Path:
    root = tcma_dir()
    if root is None:
        pytest.skip("TCMA data not found: set PYDEPMICRO_TCMA or place shared/data/tcma beside the checkout")
    return root


@pytest.fixture
def small_table() -> MicrobiomeTable:
    """6 samples x 5 taxa with zeros, one NaN, float values, metadata of several types, taxonomy."""
    rng = np.random.default_rng(1)
    counts = rng.poisson(5.0, size=(6, 5)).astype(float) * (rng.random((6, 5)) > 0.4)
    counts[0, 1] = 12.345678901234
    counts[2, 3] = np.nan
    samples = [f"S{i}" for i in range(6)]
    taxa = [f"OTU_{i}" for i in range(5)]
    meta = pd.DataFrame(
        {
            "sample_type": ["Primary Tumor", "Solid Tissue Normal"] * 3,
            "age": [40.5, np.nan, 61.0, 70.25, 33.0, 58.0],
            "batch": [1, 2, 1, 2, 3, 3],
            "note": ["a", None, "c", "d", "e", "f"],
        },
        index=samples,
    )
    taxonomy = pd.DataFrame(
        {
            "Kingdom": ["Bacteria"] * 5,
            "Phylum": ["Firmicutes", "Firmicutes", "Bacteroidetes", "Proteobacteria", np.nan],
            "Genus": ["Lactobacillus", "Streptococcus", "Bacteroides", np.nan, np.nan],
        },
        index=taxa,
    )
    return MicrobiomeTable(counts, samples, taxa, sample_meta=meta, taxonomy=taxonomy)


# ---------------------------------------------------------------------- a tiny random BERT (no download)

HIDDEN = 32
WORDS = [
    "sample", "type", "primary", "tumor", "tumour", "solid", "tissue", "normal", "metastatic",
    "pathologic", "stage", "i", "ii", "iii", "iv", "iia", "iib", "gender", "male", "female", "race",
    "white", "asian", "age", "at", "initial", "diagnosis", "vital", "status", "alive", "dead",
    "batch", "note", "yes", "no",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer BERT (hidden 32) and a WordPiece tokenizer saved with save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = tmp_path_factory.mktemp("tiny_bert")
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789:;.-")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + chars + [f"##{c}" for c in chars]
    vocab = list(dict.fromkeys(vocab))
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    return path
