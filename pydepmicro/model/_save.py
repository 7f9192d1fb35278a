"""Model directories: config.json + model.safetensors + taxa.tsv (+ training curves, dependency edges).

Loading never unpickles: weights come from safetensors (plain tensors), everything else from JSON
and TSV. The text encoder is referenced by name or path, not copied.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import torch

from .. import __version__
from ..errors import InputFormatError, InvalidValueError, ModelMismatchError, OutputExistsError, UnreadableFileError

FORMAT = "pydepmicro-model"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, TAXA = "config.json", "model.safetensors", "taxa.tsv"


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def save_model(model, path, *, force: bool = False, curves: bool = True) -> list[Path]:
    """Write ``model`` to the directory ``path`` atomically (a temporary folder renamed into place)."""
    from safetensors.torch import save_file

    if model.module is None and model.vae is None:
        raise InvalidValueError("nothing to save: the model is neither fitted nor pretrained",
                                hint="call fit() or pretrain_vae() first")
    target = Path(path)
    if target.exists() and not force:
        raise OutputExistsError(f"output exists: {target}", hint="choose another folder or pass --force")
    if target.exists() and not target.is_dir():
        raise OutputExistsError("the model path is a file", path=str(target), hint="give a folder name")
    if not target.parent.exists():
        raise UnreadableFileError(f"the folder {str(target.parent)!r} does not exist", path=str(target),
                                  hint="create the folder first")
    fitted = model.module is not None
    module = model.module if fitted else model.vae
    taxa = list(model.taxa) if fitted else list(model.vae.vocab)
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "depmicrodiff" if fitted else "vae",
        "pydepmicro_version": __version__, "torch_version": torch.__version__,
        "hparams": model.hparams, "vae": model.vae.config, "n_taxa": len(taxa),
        "metadata": {"columns": model.metadata_columns, "mode": model.hparams["metadata_mode"],
                     "encoder": model.encoder_config},
        "training": model.training,
    }
    if fitted:
        config.update(dat=model.module.dat.config, scheduler=model.scheduler().config,
                      block_sizes=model.module.block_sizes,
                      ar_order=[taxa[int(i)] for i in model.module.ar_perm.cpu()])
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT, "kind": config["kind"]})
        with open(tmp / CONFIG, "w", encoding="utf-8") as handle:
            json.dump(_json_safe(config), handle, indent=2)
        pd.DataFrame({"taxon_id": taxa}).to_csv(tmp / TAXA, sep="\t", index=False)
        if curves and model.history:
            from ._plots import plot_history

            model.history_frame.to_csv(tmp / "training_curves.csv", index=False)
            plot_history(model.history_frame, tmp / "training_curves.png")
        if fitted and model.dependency_edges is not None:
            model.dependency_edges.to_csv(tmp / "dependency_edges.tsv", sep="\t", index=False)
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, trash / "old")
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(target.iterdir())


def read_config(path) -> dict:
    folder = Path(path)
    if not folder.is_dir():
        raise UnreadableFileError("model folder not found", path=str(folder),
                                  hint="give the folder written by `depmicro train -o` or DepMicroDiff.save()")
    for name in (CONFIG, WEIGHTS, TAXA):
        if not (folder / name).is_file():
            raise InputFormatError(f"not a pydepmicro model folder: {name} is missing", path=str(folder),
                                   hint="give the folder written by `depmicro train -o` or DepMicroDiff.save()")
    try:
        with open(folder / CONFIG, encoding="utf-8") as handle:
            config = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{CONFIG} is not valid JSON ({exc})", path=str(folder / CONFIG),
                               hint="the model folder is damaged; save the model again") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InputFormatError(f"{CONFIG} is not a pydepmicro model config", path=str(folder / CONFIG),
                               hint="give the folder written by `depmicro train -o` or DepMicroDiff.save()")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelMismatchError(
            f"the model was saved in format {config['format_version']} by pydepmicro {config.get('pydepmicro_version')};"
            f" this pydepmicro {__version__} reads format {FORMAT_VERSION}",
            path=str(folder), hint="upgrade pydepmicro",
        )
    return config


def load_model(cls, path, *, device: str = "auto"):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..nn.dat import DependencyAwareTransformer
    from ..nn.diffusion import LatentDiffusion
    from ..nn.vae import TaxonVAE

    folder = Path(path)
    config = read_config(folder)
    taxa = pd.read_csv(folder / TAXA, sep="\t", dtype=str, keep_default_na=False)
    if list(taxa.columns) != ["taxon_id"] or len(taxa) != config.get("n_taxa"):
        raise InputFormatError(f"{TAXA} does not match {CONFIG} ({len(taxa)} taxa, config says {config.get('n_taxa')})",
                               path=str(folder / TAXA), hint="the model folder is damaged; save the model again")
    # folders saved before lineage_inputs existed hold a VAE without those inputs
    model = cls(device=device, **{"lineage_inputs": False, **config["hparams"]})
    try:
        state = load_file(str(folder / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputFormatError(f"cannot read {WEIGHTS} ({exc})", path=str(folder / WEIGHTS),
                               hint="the model folder is damaged; save the model again") from exc
    vae = TaxonVAE(**config["vae"])
    ids = pd.Index(taxa["taxon_id"].tolist())
    try:
        if config["kind"] == "vae":
            vae.load_state_dict(state, strict=True)
            model.vae = vae.to(model.device)
        else:
            q = len(ids)
            dat = DependencyAwareTransformer(**config["dat"])
            module = LatentDiffusion(vae, dat, vae_index=torch.zeros(q, dtype=torch.long),
                                     ar_perm=torch.arange(q), block_sizes=config["block_sizes"],
                                     cond_latent=config["hparams"].get("cond_latent", "observed"),
                                     target=config["hparams"].get("target", "latent"),
                                     generation_scaling=config["hparams"].get("generation_scaling", "dimension"))
            # buffers of generation, absent from folders saved before they existed (identity values)
            for key, value in (("generation_std", torch.ones(vae.d_z)), ("presence_offset", torch.zeros(q)),
                               ("abundance_sd", torch.zeros(q)), ("generation_loc", torch.zeros(q, vae.d_z)),
                               ("generation_scale", torch.ones(q, vae.d_z)),
                               ("metadata_weight", torch.zeros(0, q, vae.d_z)), ("metadata_center", torch.zeros(0))):
                state.setdefault(key, value)
            # the metadata base's size is set by its fit (metadata tokens x width)
            module.metadata_weight = torch.zeros_like(state["metadata_weight"])
            module.metadata_center = torch.zeros_like(state["metadata_center"])
            module.load_state_dict(state, strict=True)
            model.module, model.vae, model.taxa = module.to(model.device), module.vae, ids
    except RuntimeError as exc:
        raise ModelMismatchError(f"the weights do not fit the configuration ({str(exc).splitlines()[0]})",
                                 path=str(folder / WEIGHTS), hint="the model folder is damaged; save it again") from exc
    model.metadata_columns = list(config["metadata"]["columns"])
    model.encoder_config = config["metadata"]["encoder"]
    model.training = config.get("training", {})
    curves = folder / "training_curves.csv"
    if curves.is_file():
        model.history = pd.read_csv(curves).to_dict("records")
    edges = folder / "dependency_edges.tsv"
    if edges.is_file():
        model.dependency_edges = pd.read_csv(edges, sep="\t")
    return model
