"""``depmicro generate``, ``depmicro evaluate-generation`` and ``depmicro simulate-copula``
(registered by :mod:`pydepmicro.cli`).

Thin shells over :meth:`pydepmicro.model.DepMicroDiff.generate`,
:func:`pydepmicro.evaluate.ecology.evaluate_generation` and
:class:`pydepmicro.evaluate.copula.CopulaGenerator`. ``simulate-copula`` is a command of its own
rather than a ``--method`` of ``depmicro simulate``: ``simulate`` draws a table from nothing, this one
learns from a REAL table, like ``depmicro generate --model``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_model import run_options
from .io import READ_FORMATS, WRITE_FORMATS


def _read(path, fmt):
    from .io import read_table

    return read_table(path, fmt)


@click.command("evaluate-generation")
@click.argument("real_path", metavar="REAL", type=click.Path(dir_okay=False))
@click.argument("synth_path", metavar="SYNTH", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for metrics.json, metrics.tsv and generation.png (created).")
@click.option("--tree", type=click.Path(dir_okay=False), help="Newick tree for UniFrac (tips = taxon ids).")
@click.option("--tcma-taxonomy", type=click.Path(file_okay=False),
              help="TCMA lineage folder (../shared/data/tcma/taxonomy): a taxonomic tree of NCBI taxids.")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(READ_FORMATS),
              help="Format of both tables.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--splits", "n_splits", default=5, show_default=True, type=click.IntRange(1),
              help="Random halves of REAL for the real-vs-real floor.")
@click.option("--permutations", default=999, show_default=True, type=click.IntRange(0),
              help="PERMANOVA / PERMDISP permutations.")
@click.option("--classifier", default="forest", show_default=True, type=click.Choice(["forest", "logistic"]),
              help="Classifier of the two-sample test.")
@click.option("--no-unifrac", is_flag=True, help="Bray-Curtis only (UniFrac is the slow part).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs in OUT.")
def evaluate_generation_cmd(real_path, synth_path, out_dir, tree, tcma_taxonomy, fmt, seed, n_splits, permutations,
                            classifier, no_unifrac, force):
    """Compare a synthetic table SYNTH with the REAL one it imitates.

    Sparsity deviation, prevalence correlation, Bray-Curtis and UniFrac discrepancies with PERMANOVA and
    PERMDISP (each beside a real-vs-real floor from random halves of REAL), and a classifier two-sample
    test (AUROC). UniFrac uses --tree, else --tcma-taxonomy, else REAL's own taxonomy; without any it is
    skipped and metrics.json says why.
    """
    from .errors import InvalidOptionError
    from .evaluate.ecology import BETA_METRICS, evaluate_generation, metrics_frame, plot_generation
    from .io._atomic import atomic_outputs, check_writable

    if tree and tcma_taxonomy:
        raise InvalidOptionError("--tree and --tcma-taxonomy both given", hint="give one tree source")
    out = Path(out_dir)
    paths = {"json": out / "metrics.json", "tsv": out / "metrics.tsv", "png": out / "generation.png"}
    if out.exists():
        check_writable(paths, force=force)
    real, synth = _read(real_path, fmt), _read(synth_path, fmt)
    metrics = ("braycurtis",) if no_unifrac else BETA_METRICS
    report = evaluate_generation(real, synth, tree=tree, tcma_taxonomy=tcma_taxonomy, seed=seed, n_splits=n_splits,
                                 permutations=permutations, classifier=classifier, metrics=metrics)
    report["inputs"] = {"real": str(real_path), "synthetic": str(synth_path)}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_outputs(paths, force=force) as temps:
        temps["json"].write_text(json.dumps(report, indent=2, default=float) + "\n")
        metrics_frame(report).to_csv(temps["tsv"], sep="\t", index=False, float_format="%.6g")
        plot_generation(real, synth, temps["png"], seed=seed)
    s, p, c = report["sparsity"], report["prevalence"], report["classifier"]
    bc = report["beta"]["braycurtis"]
    click.echo(f"sparsity {s['real']:.3f} real vs {s['synthetic']:.3f} synthetic ({100 * s['relative']:.1f}% relative); "
               f"prevalence r = {p['pearson']:.3f}; Bray-Curtis PERMANOVA R2 {bc['matched']['R2']:.4f} "
               f"(floor {bc['floor']['R2']:.4f}); classifier AUROC {c['auroc']:.3f}")
    click.echo(f"UniFrac: {report['tree']}")
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


@click.command("simulate-copula")
@click.argument("real_path", metavar="REAL", type=click.Path(dir_okay=False))
@click.option("-n", "--samples", "n_samples", type=click.IntRange(1), default=None,
              help="Synthetic samples to draw.  [default: as many as REAL]")
@click.option("-o", "--out", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Output table (format from the extension or --to).")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(READ_FORMATS),
              help="Format of REAL.")
@click.option("--to", "to_fmt", default=None, type=click.Choice(WRITE_FORMATS),
              help="Output format (default: from OUT's extension).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--round-counts", is_flag=True, help="Round counts to integers (present entries stay >= 1).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def simulate_copula(real_path, n_samples, output_path, fmt, to_fmt, seed, round_counts, force):
    """Fit the zero-inflated Gaussian-copula baseline (MIDASim-style) to REAL and draw synthetic samples."""
    from .evaluate.copula import CopulaGenerator
    from .io import output_paths, write_table
    from .io._atomic import check_writable

    fmt_out, paths = output_paths(output_path, to_fmt)
    check_writable(paths, force=force)  # before any work
    real = _read(real_path, fmt)
    gen = CopulaGenerator(round_counts=round_counts).fit(real)
    synth = gen.sample(n_samples or real.n_samples, seed=seed)
    written = write_table(synth, output_path, fmt_out, force=force)
    click.echo(f"copula: {synth.n_samples} samples x {synth.n_taxa} taxa, zero fraction {synth.zero_fraction:.3f} "
               f"(real {real.zero_fraction:.3f}) -> {', '.join(map(str, written))}")


@click.command("generate")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="Trained model folder (depmicro train ... -o MODEL).")
@click.option("-n", "n_samples", type=click.IntRange(1), help="Samples to generate (default with --meta: one per row).")
@click.option("--meta", type=click.Path(dir_okay=False),
              help="Metadata of the samples to generate (CSV/TSV, first column = id): one conditioned sample per row.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Synthetic table (format from the extension or --to).")
@click.option("--to", "to_fmt", default=None, type=click.Choice(WRITE_FORMATS),
              help="Output format (default: from the extension).")
@click.option("--sampler", default="ddim:50", show_default=True, help="ddim:K, ddpm:K, full, fractional:n or adaptive.")
@click.option("--library-size", type=click.IntRange(1),
              help="Read depth of every sample (default: drawn from the training table's depths).")
@click.option("--empty-fraction", type=click.FloatRange(0, 1, max_open=True),
              help="Share of samples drawn empty, without reads (default: the training table's share; 0: none).")
@click.option("--guidance", default=1.0, show_default=True, type=click.FloatRange(0),
              help="With --meta: classifier-free guidance; above 1 strengthens the metadata's effect on the samples "
                   "(twice the sampling time), 0 ignores what the denoiser makes of it (a model's metadata "
                   "base, on by default, always applies).")
@run_options
@click.option("--batch-size", default=512, show_default=True, type=click.IntRange(1),
              help="Samples per forward pass: bounds memory.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(model_dir, n_samples, meta, output_path, to_fmt, sampler, library_size, empty_fraction, guidance, seed,
             device, precision, batch_size, force, quiet):
    """Draw synthetic samples from a trained model (conditioned on --meta when given).

    Presence of each taxon is sampled (0/1) by the model's sparsity-preserving decoder, so the synthetic
    table is as sparse as real ones; counts are the drawn relative abundances at each sample's read depth.
    """
    from .errors import InvalidOptionError
    from .io import output_paths, write_table
    from .io._atomic import check_writable
    from .io.metadata import read_metadata
    from .model import DepMicroDiff, parse_sampler

    parse_sampler(sampler)
    if n_samples is None and meta is None:
        raise InvalidOptionError("say how many samples to generate", hint="give -n N, or --meta with one row per sample")
    if guidance != 1.0 and meta is None:
        raise InvalidOptionError("--guidance needs --meta (it strengthens the metadata's effect)",
                                 hint="give --meta, or leave --guidance at 1")
    fmt_out, paths = output_paths(output_path, to_fmt)
    check_writable(paths, force=force)  # before any work
    model = DepMicroDiff.load(model_dir, device=device, precision=precision)
    if not model.is_fitted:
        raise InvalidOptionError(f"{model_dir} holds a pretrained VAE only",
                                 hint=f"train a model first: depmicro train TABLE --pretrained {model_dir} -o MODEL")
    frame = None if meta is None else read_metadata(meta)
    synth = model.generate(n_samples, meta=frame, sampler=sampler, library_size=library_size,
                           empty_fraction=empty_fraction, seed=seed, batch_size=batch_size, progress=not quiet,
                           guidance=guidance)
    written = write_table(synth, output_path, fmt_out, force=force)
    kind = "conditioned on " + meta if frame is not None and model.metadata_columns else "unconditional"
    kind += f", guidance {guidance:g}" if guidance != 1.0 else ""
    n_empty = int((synth.counts.sum(1) == 0).sum())
    empty = (f", {n_empty} of them empty as in the training table (--empty-fraction 0: none)"
             if n_empty and empty_fraction is None else "")
    click.echo(f"generated {synth.n_samples} samples x {synth.n_taxa} taxa ({kind}{empty}), zero fraction "
               f"{synth.zero_fraction:.3f} -> {', '.join(map(str, written))}")


commands = (generate, evaluate_generation_cmd, simulate_copula)
