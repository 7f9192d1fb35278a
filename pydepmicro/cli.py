"""The ``depmicro`` command line: a thin shell over the Python API.

Errors the user can fix are printed as one line ("depmicro: error: <file>: <problem>. Fix: ...")
with a non-zero exit status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click
import numpy as np
import pandas as pd

from . import __version__
from .errors import DepMicroError
from .io import READ_FORMATS as READ_CHOICES
from .io import WRITE_FORMATS as WRITE_CHOICES


class _Group(click.Group):
    """Turns DepMicroError (and OS errors) into one line and an exit status, unless --debug."""

    def invoke(self, ctx: click.Context):
        debug = bool(ctx.params.get("debug"))
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except DepMicroError as exc:
            if debug:
                raise
            click.echo(f"depmicro: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (OSError, MemoryError) as exc:
            if debug:
                raise
            click.echo(f"depmicro: error: {type(exc).__name__}: {exc}. Rerun with --debug for details", err=True)
            ctx.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"depmicro: warning: {message}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="depmicro")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """pydepmicro: dependency-aware diffusion imputation for sparse microbiome tables.

    Tables: BIOM (.biom, JSON or HDF5), AnnData (.h5ad), phyloseq CSV exports and TSV/CSV (.tsv/.csv),
    TCGA/TCMA tables (--format tcga, detected automatically), phyloseq RDS (.rds, needs rpy2).
    """


def table_options(func):
    """Options every command that reads a table shares."""
    options = [
        click.option("--meta", "meta", type=click.Path(),
                     help="Sample metadata (CSV/TSV, first column = sample id)."),
        click.option("--taxonomy", type=click.Path(),
                     help="Taxonomy table (taxa x ranks), e.g. a phyloseq tax_table export."),
        click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(READ_CHOICES),
                     help="Input format."),
        click.option("--taxa-are-rows/--samples-are-rows", "taxa_are_rows", default=None,
                     help="Orientation of a delimited table (detected from ids when not given)."),
        click.option("--id-column", default=None, help="Metadata column with the sample ids (default: first)."),
        click.option("--missing", default="error", show_default=True, type=click.Choice(["error", "drop", "keep"]),
                     help="Samples without metadata: fail, drop them, or keep them with empty metadata."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read(path, fmt, meta, taxonomy, taxa_are_rows, id_column, missing):
    from .io import read_table

    return read_table(path, fmt, meta=meta, taxonomy=taxonomy, taxa_are_rows=taxa_are_rows,
                      missing=missing, id_column=id_column)


# ---------------------------------------------------------------------- inspect


@cli.command()
@click.argument("table_path", metavar="TABLE", type=click.Path())
@table_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--plot", type=click.Path(), help="Write a PNG of library sizes and taxon prevalence.")
@click.option("--force", is_flag=True, help="Overwrite an existing --plot file.")
def inspect(table_path, meta, taxonomy, fmt, taxa_are_rows, id_column, missing, as_json, plot, force):
    """Summarise TABLE: size, sparsity, library sizes, empty samples/taxa, metadata and id mismatches.

    Samples without metadata are reported, not refused (--missing applies to other commands).
    """
    from .inspect import format_summary, plot_summary, summarise
    from .io import read_metadata

    meta_frame = read_metadata(meta, id_column=id_column) if meta else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mismatches are part of the report below
        table = _read(table_path, fmt, meta_frame, taxonomy, taxa_are_rows, id_column, "keep")
    summary = summarise(table, meta_frame)
    click.echo(json.dumps(summary, indent=2, default=str) if as_json else format_summary(summary))
    if plot:
        written = plot_summary(table, plot, force=force)
        click.echo(f"plot: {written}", err=True)


# ---------------------------------------------------------------------- convert


@cli.command()
@click.argument("input_path", metavar="IN", type=click.Path())
@click.argument("output_path", metavar="OUT", type=click.Path())
@table_options
@click.option("--to", "to_fmt", default=None,
              type=click.Choice(WRITE_CHOICES), help="Output format (default: from OUT's extension).")
@click.option("--out-taxa-are-rows/--out-samples-are-rows", "out_taxa_are_rows", default=True, show_default=True,
              help="Orientation of a delimited output.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def convert(input_path, output_path, meta, taxonomy, fmt, taxa_are_rows, id_column, missing, to_fmt,
            out_taxa_are_rows, force):
    """Convert a table between formats, carrying metadata and taxonomy along."""
    from .io import output_paths, write_table

    output_paths(output_path, to_fmt)  # fail on a bad output name before reading anything
    table = _read(input_path, fmt, meta, taxonomy, taxa_are_rows, id_column, missing)
    written = write_table(table, output_path, to_fmt, force=force, taxa_are_rows=out_taxa_are_rows)
    click.echo(f"wrote {table.n_samples} samples x {table.n_taxa} taxa to {', '.join(map(str, written))}")


# ---------------------------------------------------------------------- simulate


@cli.command()
@click.argument("output_path", metavar="OUT", type=click.Path())
@click.option("--samples", "n_samples", default=300, show_default=True, type=click.IntRange(2))
@click.option("--taxa", "n_taxa", default=80, show_default=True, type=click.IntRange(2))
@click.option("--zero-fraction", default=0.75, show_default=True, type=click.FloatRange(0.5, 0.95),
              help="Share of zeros in the simulated table (TCMA tables: 0.6-0.9).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--to", "to_fmt", default=None, type=click.Choice(["biom", "biom-json", "h5ad", "tsv", "csv", "tcga"]),
              help="Output format (default: from OUT's extension).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def simulate(output_path, n_samples, n_taxa, zero_fraction, seed, to_fmt, force):
    """Simulate a TCGA-like sparse table with planted taxon dependencies.

    Writes OUT (with metadata and taxonomy) and, beside it, <OUT>.truth_edges.tsv (the planted
    dependencies) and <OUT>.dropouts.tsv (the entries zeroed by simulated dropout).
    """
    from .datasets import simulate as run_simulation
    from .io import output_paths, write_table
    from .io._atomic import atomic_outputs, check_writable

    fmt, paths = output_paths(output_path, to_fmt)
    out = Path(output_path)
    extra = {"edges": out.with_name(out.name + ".truth_edges.tsv"), "dropouts": out.with_name(out.name + ".dropouts.tsv")}
    check_writable({**paths, **extra}, force=force)
    sim = run_simulation(n_samples=n_samples, n_taxa=n_taxa, zero_fraction=zero_fraction, seed=seed)
    with atomic_outputs(extra, force=True) as temps:
        sim.edges.to_csv(temps["edges"], sep="\t", index=False)
        rows, cols = np.nonzero(sim.dropout_mask)
        pd.DataFrame({"sample_id": sim.table.sample_ids[rows], "taxon_id": sim.table.taxa_ids[cols],
                      "true_count": sim.true_counts[rows, cols]}).to_csv(temps["dropouts"], sep="\t", index=False)
        written = write_table(sim.table, output_path, fmt, force=force)
    t = sim.table
    click.echo(
        f"simulated {t.n_samples} samples x {t.n_taxa} taxa, zero fraction {t.zero_fraction:.3f}, "
        f"{len(sim.edges)} planted dependencies, {int(sim.dropout_mask.sum())} dropouts -> "
        f"{', '.join(map(str, written + list(extra.values())))}"
    )


@cli.command()
@click.option("-o", "--out", "out_dir", default="depmicro-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's outputs (created; existing files need --force).")
@click.option("--force", is_flag=True, help="Overwrite outputs of an earlier demo run.")
@click.option("--quick", is_flag=True, help="A tiny model and few steps (seconds; for tests, not for results).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out_dir, force, quick, quiet):
    """Run the main job on the embedded example data (a simulated TCGA-like cohort).

    Writes into OUT: the example table (BIOM) with its metadata, a summary and an overview plot, the
    taxon dependency graph (edges.tsv, dependencies.png) with its recovery of the planted
    dependencies, then trains DepMicroDiff on the table, imputes it (imputed.biom and the per-entry
    side tables), saves the model (model/) and checks the imputation against the simulator's truth
    (imputation_check.json, imputation.png).
    """
    from .demo import run_demo

    run_demo(out_dir, force=force, quick=quick, progress=not quiet, echo=click.echo)


from .cli_benchmark import benchmark  # noqa: E402  (one module per capability)
from .cli_deps import deps  # noqa: E402
from .cli_generation import commands as generation_commands  # noqa: E402
from .cli_model import impute, pretrain, train  # noqa: E402

for _command in (deps, pretrain, train, impute, benchmark, *generation_commands):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="depmicro")


if __name__ == "__main__":
    sys.exit(main())

