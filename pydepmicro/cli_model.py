"""``depmicro pretrain / train / impute``: the engine from the shell (registered by :mod:`pydepmicro.cli`).

Each command reads tables, calls :class:`pydepmicro.model.DepMicroDiff`, writes its outputs; every
output path is checked before any training starts, so a bad path costs nothing and leaves nothing.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import click

from .errors import InvalidOptionError, OutputExistsError, UnreadableFileError
from .io import READ_FORMATS, WRITE_FORMATS


def parse_value(text: str):
    """A command-line value as bool, None, int, float or str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _hparams(settings) -> dict:
    """--set KEY=VALUE pairs -> keyword arguments of DepMicroDiff (names checked there)."""
    out = {}
    for item in settings:
        if "=" not in item:
            raise InvalidOptionError(f"--set expects KEY=VALUE, got {item!r}", hint="e.g. --set d_model=128")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out


def _model_dir_free(path, force: bool) -> None:
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(f"output exists: {p}", hint="choose another folder or pass --force")
    if not p.parent.exists():
        raise UnreadableFileError(f"the folder {str(p.parent)!r} does not exist", path=str(p),
                                  hint="create the folder first")


def _read(path, fmt, meta, missing, taxa_are_rows=None):
    from .io import read_table

    return read_table(path, fmt, meta=meta, missing=missing, taxa_are_rows=taxa_are_rows)


def _main_process() -> bool:
    """False on the ranks > 0 of a torchrun launch: they train their share and write nothing."""
    from .model._distributed import is_main_process

    return is_main_process()


def _done(start: float) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    click.echo(f"wall time {time.perf_counter() - start:.1f} s, peak memory {peak:.0f} MiB", err=True)


def run_options(func):
    """--seed, --device and --precision (commands that run the engine)."""
    options = [
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16"]),
                     help="auto: bfloat16 autocast on a GPU that supports it, float32 elsewhere."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def input_options(func):
    """TABLE and how to read it (train, impute)."""
    options = [
        click.argument("table_path", metavar="TABLE", type=click.Path(dir_okay=False)),
        click.option("--meta", type=click.Path(dir_okay=False), help="Sample metadata (CSV/TSV, first column = id)."),
        click.option("--missing", default="error", show_default=True, type=click.Choice(["error", "drop", "keep"]),
                     help="Samples without metadata: fail, drop them, or keep them with empty metadata."),
        click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(READ_FORMATS)),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def training_options(func):
    """Options of commands that may train a model."""
    options = [
        click.option("--vae-steps", default=2000, show_default=True, type=click.IntRange(1),
                     help="VAE training steps."),
        click.option("--dat-steps", default=1000, show_default=True, type=click.IntRange(1),
                     help="Denoiser (DAT) training steps."),
        click.option("--batch-size", "train_batch", default=64, show_default=True, type=click.IntRange(1),
                     help="Training batch size."),
        click.option("--generate-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1),
                     help="Share of training samples hidden entirely, so the model learns to generate "
                          "(depmicro generate); 0 = a model that cannot generate, 1 = a generation model "
                          "(best samples; cannot impute)."),
        click.option("--dependency", default=None, type=click.Choice(["both", "ftest", "mi", "none"]),
                     help="How to find the dependency mask: both tests (the paper's model), one, or none "
                          "(the default: Dep showed no effect on accuracy; see the README)."),
        click.option("--no-metadata", is_flag=True, help="Do not condition on sample metadata."),
        click.option("--text-encoder", default=None, metavar="PATH",
                     help="Local folder (or cached hub name) of a BERT-family model for the metadata; "
                          "default: the packaged all-MiniLM-L6-v2."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Model hyperparameter (repeatable), e.g. --set d_model=128 --set n_blocks=1."),
        click.option("--library-size", default=None, metavar="NUMBER|COLUMN",
                     help="Each sample's whole total reads, missing entries included, when known: one number "
                          "(e.g. 100 for a table of percentages) or a metadata column (--meta) with one per "
                          "sample. The observed share is then known rather than estimated (--closure)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _new_model(device, settings, dependency, no_metadata, text_encoder, pretrained=None, precision="auto"):
    from .model import DepMicroDiff

    hparams = _hparams(settings)
    if dependency:
        hparams["dependency"] = dependency
    if no_metadata:
        hparams["metadata"] = False
    if text_encoder:
        hparams["text_encoder"] = text_encoder
    if pretrained is None:
        return DepMicroDiff(device=device, precision=precision, **hparams)
    model = DepMicroDiff.load(pretrained, device=device, precision=precision)
    if model.is_fitted:
        raise InvalidOptionError(f"{pretrained} is a trained model, not a pretrained VAE",
                                 hint="give a folder written by `depmicro pretrain`, or use `impute --model`")
    model.hparams.update(hparams)
    return model


def _fit(model, table, vae_steps, dat_steps, train_batch, generate_fraction, seed, quiet, library_size=None):
    return model.fit(table, vae_steps=vae_steps, dat_steps=dat_steps, batch_size=train_batch,
                     generate_fraction=generate_fraction, seed=seed, progress=not quiet, library_size=library_size)


def _library_size(table, value: str | None):
    """--library-size: None, one number, or the values of a sample metadata column (table order)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    meta = table.sample_meta
    if meta is None or value not in meta.columns:
        columns = "none" if meta is None else ", ".join(map(str, meta.columns[:10]))
        raise InvalidOptionError(f"--library-size {value!r} is neither a number nor a sample metadata column "
                                 f"(columns: {columns})", hint="give a number, or --meta FILE with that column")
    import pandas as pd

    sizes = pd.to_numeric(meta[value], errors="coerce")
    if sizes.isna().any():
        bad = sizes.index[sizes.isna()][:3]
        raise InvalidOptionError(f"metadata column {value!r} has missing or non-numeric library sizes "
                                 f"(e.g. samples {', '.join(map(str, bad))})",
                                 hint="every sample needs its total reads in that column")
    return sizes.to_numpy(dtype=float)


# ---------------------------------------------------------------------- pretrain


@click.command("pretrain")
@click.argument("tables", metavar="TABLE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(), help="Folder for the pretrained VAE.")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(READ_FORMATS))
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1), help="Training steps.")
@run_options
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Model hyperparameter (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pretrain(tables, output, fmt, steps, seed, device, precision, settings, force, quiet):
    """Pretrain the VAE on one or more TABLEs (e.g. other cancers), for `depmicro train --pretrained`."""
    from .model import DepMicroDiff

    start = time.perf_counter()
    model = DepMicroDiff(device=device, precision=precision, **_hparams(settings))
    _model_dir_free(output, force)
    read = [_read(path, fmt, None, "keep") for path in tables]
    for path, table in zip(tables, read):
        click.echo(f"{path}: {table.n_samples} samples x {table.n_taxa} taxa", err=True)
    model.pretrain_vae(read, steps=steps, seed=seed, progress=not quiet)
    if not _main_process():
        return
    written = model.save(output, force=force)
    click.echo(f"pretrained VAE on {len(model.vae.vocab)} taxa -> {output} ({len(written)} files)")
    _done(start)


# ---------------------------------------------------------------------- train


@click.command("train")
@input_options
@click.option("--pretrained", type=click.Path(file_okay=False), help="Folder from `depmicro pretrain`.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Folder for the trained model.")
@training_options
@run_options
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(table_path, meta, missing, fmt, pretrained, output, vae_steps, dat_steps, train_batch, generate_fraction,
          dependency, no_metadata, text_encoder, settings, library_size, seed, device, precision, force, quiet):
    """Train DepMicroDiff on TABLE and save it to a model folder (config.json, model.safetensors, taxa.tsv,
    training curves)."""
    start = time.perf_counter()
    model = _new_model(device, settings, dependency, no_metadata, text_encoder, pretrained, precision=precision)
    _model_dir_free(output, force)
    table = _read(table_path, fmt, meta, missing)
    _fit(model, table, vae_steps, dat_steps, train_batch, generate_fraction, seed, quiet,
         _library_size(table, library_size))
    if not _main_process():
        return
    model.save(output, force=force)
    info = model.training["fit"]
    click.echo(f"trained on {info['n_train']} samples x {len(model.taxa)} taxa ({info['n_val']} held out for "
               f"validation; {info['dependency_edges']} dependency edges; metadata: "
               f"{', '.join(model.metadata_columns) or 'none'}) -> {output}")
    _done(start)


# ---------------------------------------------------------------------- impute


def _output_format(table_path, fmt, output, out_format):
    from .io import _EXTENSIONS, detect_format
    from .io._common import suffix_of

    if out_format:
        return out_format
    source = detect_format(table_path) if fmt == "auto" else fmt
    by_extension = _EXTENSIONS.get(suffix_of(Path(output)))
    if by_extension is None:
        return source
    if {by_extension, source} <= {"biom", "biom-json"} or (source == "tcga" and by_extension == "csv"):
        return source  # same family: keep the input's flavour
    return by_extension


@click.command("impute")
@input_options
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Trained model folder; without it a model is trained on TABLE first (transductive).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Imputed table (same format as TABLE unless the extension or --out-format says otherwise).")
@click.option("--out-format", type=click.Choice(WRITE_FORMATS), help="Output format.")
@click.option("--draws", default=5, show_default=True, type=click.IntRange(0),
              help="Samples drawn per sample, for the spread (0: none, unless --estimate draws).")
@click.option("--sampler", default="ddim:10", show_default=True,
              help="ddim:K, ddpm:K, full, fractional:n (n = 2, 3, 4, 20), adaptive or vae (the VAE alone).")
@click.option("--estimate", default="auto", show_default=True, type=click.Choice(["auto", "vae", "mean", "draws"]),
              help="Point estimate: vae = the VAE's posterior-mean pass (the latent the denoiser corrects); "
                   "mean = the denoiser's posterior-mean pass; draws = the mean of the draws; auto = missing (NA) "
                   "entries from vae, zeros (dropout decisions and values) from mean, the better ones on TCMA.")
@click.option("--zeros", default="auto", show_default=True, type=click.Choice(["auto", "keep", "impute"]),
              help="auto: replace zeros the model judges dropouts; keep: fill only missing (NA) entries; "
                   "impute: replace every zero.")
@click.option("--dropout-threshold", default=None, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Presence probability above which --zeros auto treats a zero as a dropout.  [default: the "
                   "threshold the model calibrated when fitted; 0.5 for --estimate draws]")
@click.option("--align", is_flag=True, help="Accept a table whose taxa differ from the model's (shared taxa only).")
@click.option("--closure/--no-closure", default=True, show_default=True,
              help="Count missing entries as part of each sample's composition: observed shares are scaled so "
                   "that observed plus imputed make the whole, and imputed counts use the completed total.")
@click.option("--save-model", type=click.Path(), help="Also save the model trained on TABLE to this folder.")
@training_options
@run_options
@click.option("--impute-batch", default=512, show_default=True, type=click.IntRange(1),
              help="Sequences (samples x draws) per forward pass when imputing: bounds memory.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def impute(table_path, meta, missing, fmt, model_dir, output, out_format, draws, sampler, estimate, zeros,
           dropout_threshold, align, closure, save_model, vae_steps, dat_steps, train_batch, generate_fraction, dependency,
           no_metadata, text_encoder, settings, library_size, seed, device, precision, impute_batch, force, quiet):
    """Impute TABLE: missing (NA) entries always, zeros by --zeros. Writes the imputed table and, beside it,
    which entries were imputed, the spread of the draws and each zero's dropout probability."""
    from .io import imputation_paths, write_imputation
    from .io._atomic import check_writable
    from .model import DepMicroDiff, parse_sampler

    start = time.perf_counter()
    parse_sampler(sampler)
    if model_dir is not None:
        given = [name for name, value in (("--set", settings), ("--save-model", save_model),
                                          ("--dependency", dependency), ("--text-encoder", text_encoder))
                 if value]
        if given or no_metadata:
            raise InvalidOptionError(f"{', '.join(given) or '--no-metadata'} only apply when training; --model was given",
                                     hint="drop them, or leave out --model to train on TABLE")
        model = DepMicroDiff.load(model_dir, device=device, precision=precision)
        if not model.is_fitted:
            raise InvalidOptionError(f"{model_dir} holds a pretrained VAE only",
                                     hint=f"train a model first: depmicro train TABLE --pretrained {model_dir} -o MODEL")
    else:
        model = _new_model(device, settings, dependency, no_metadata, text_encoder, precision=precision)
    out_fmt = _output_format(table_path, fmt, output, out_format)
    _, paths = imputation_paths(output, out_fmt)
    check_writable(paths, force=force)
    if save_model:
        _model_dir_free(save_model, force)
    table = _read(table_path, fmt, meta, missing)
    library_size = _library_size(table, library_size)
    if model_dir is None:
        click.echo(f"training on {table.n_samples} samples x {table.n_taxa} taxa (no --model given)", err=True)
        _fit(model, table, vae_steps, dat_steps, train_batch, generate_fraction, seed, quiet, library_size)
    if not _main_process():  # torchrun: rank 0 imputes and writes
        return
    result = model.impute(table, draws=draws, sampler=sampler, estimate=estimate, zeros=zeros,
                          dropout_threshold=dropout_threshold, seed=seed, batch_size=impute_batch, align=align,
                          closure=closure, library_size=library_size, progress=not quiet)
    written = write_imputation(result, output, out_fmt, force=force)
    if save_model:
        model.save(save_model, force=force)
        written.append(Path(save_model))
    click.echo(result.summary())
    click.echo("wrote " + ", ".join(str(p) for p in written))
    _done(start)
