"""``depmicro benchmark``: BENCHMARK.md's protocol from one command (registered by :mod:`pydepmicro.cli`).

A thin shell over :func:`pydepmicro.benchmark.run_benchmark`; the folder it writes is described
in :mod:`pydepmicro.benchmark.report`.
"""

from __future__ import annotations

import shlex
import sys

import click

from .cli_model import _hparams


def _items(text: str | None) -> tuple | None:
    if text is None:
        return None
    return tuple(s.strip().lower() for s in text.split(",") if s.strip())


def _methods(text: str | None) -> tuple | None:
    """``--methods``: names, or "all" for the model and every baseline (also under --quick, whose own
    set leaves out IterativeImputer)."""
    from .benchmark.run import BASELINES, MODEL

    names = _items(text)
    return (MODEL, *BASELINES) if names == ("all",) else names


@click.command("benchmark")
@click.option("--data", help="TCMA folder (../shared/data/tcma), a table file, or 'example' (the simulated "
                             "example). Required unless --report-only.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Report folder; rows already in its results.csv are not recomputed (resume).")
@click.option("--seeds", type=click.IntRange(1), default=None,
              help="Number of seeds: FIRST..FIRST+N-1.  [default: 5; --quick: 1]")
@click.option("--first-seed", type=click.IntRange(0), default=None,
              help="First seed, so that processes can split a run's seeds (--seeds 1 --first-seed 3 runs "
                   "seed 3 only).  [default: 0]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quick", is_flag=True,
              help="Tiny model, one seed, one dataset, 80 samples, two ablations: checks the path in seconds.")
@click.option("--cancers", help="Evaluated TCMA datasets, comma-separated.  [default: coad,stad,hnsc; --quick: coad]")
@click.option("--methods", help="depmicrodiff and/or baseline names, comma-separated, or all.  "
                               "[default: all; --quick: all but IterativeImputer]")
@click.option("--ablations", help="all, none, groups (paper, dependency, ar, ar_decay, order, decoder, sampler, "
                                  "zeros, estimate) or names.  [default: all; --quick: no_ar,sampler_vae]")
@click.option("--regimes", default="blind,aware", show_default=True)
@click.option("--variants", default="p1,p2", show_default=True, help="Mask variants.")
@click.option("--ablation-regimes", default="blind", show_default=True, help="Regimes the ablations run in.")
@click.option("--ablation-variants", default="p1", show_default=True, help="Mask variants the ablations run in.")
@click.option("--set", "model_settings", multiple=True, metavar="KEY=VALUE",
              help="DepMicroDiff hyperparameter (repeatable), e.g. --set d_model=64.")
@click.option("--fit", "fit_settings", multiple=True, metavar="KEY=VALUE",
              help="fit() option (repeatable), e.g. --fit vae_steps=500 --fit dat_steps=800.")
@click.option("--pretrain-steps", type=click.IntRange(1), help="VAE pretraining steps.  [default: 2000; --quick: 10]")
@click.option("--no-pretrain", is_flag=True, help="Do not pretrain the VAE on the other datasets.")
@click.option("--draws", type=click.IntRange(1), help="Draws per sample.  [default: 5, as impute; --quick: 2]")
@click.option("--sampler", help="Main sampler (ddim:K, full, fractional:n, adaptive, vae).  "
                                "[default: ddim:10, as impute; --quick: ddim:4]")
@click.option("--max-samples", type=click.IntRange(10), help="Random subset of samples per dataset.")
@click.option("--p2-lineage", type=click.Choice(["full", "family"]), default="full", show_default=True,
              help="P2 relatives: every ancestor/descendant (BENCHMARK.md) or only family rank and below.")
@click.option("--p2-hide-zeros", is_flag=True, help="P2 also hides relatives that are zero in the sample.")
@click.option("--report-only", is_flag=True, help="Only rewrite summary.md, summary.csv and figures from OUT.")
@click.option("--merge", "merge_from", multiple=True, type=click.Path(file_okay=False, exists=True), metavar="DIR",
              help="Merge these benchmark folders (repeatable; e.g. one per --first-seed) into OUT and report it.")
@click.option("--quiet", is_flag=True, help="Print only the end.")
def benchmark(data, out, seeds, first_seed, device, quick, cancers, methods, ablations, regimes, variants,
              ablation_regimes, ablation_variants, model_settings, fit_settings, pretrain_steps, no_pretrain, draws,
              sampler, max_samples, p2_lineage, p2_hide_zeros, report_only, merge_from, quiet):
    """Run the imputation benchmark (BENCHMARK.md) and write results.csv, summary.md and figures to OUT."""
    from .benchmark import (
        BenchmarkSettings,
        run_benchmark,
        select_ablations,
        write_report,
    )

    echo = (lambda *a, **k: None) if quiet else click.echo
    if merge_from:
        if data is not None or report_only:
            raise click.UsageError("--merge only merges finished folders and reports them: drop --data / "
                                   "--report-only (run the benchmark in each folder first)")
        from .benchmark.merge import merge_runs

        merged = merge_runs(merge_from, out)
        click.echo(f"merged {len(merge_from)} folders into {out}: {merged['rows']} rows, {merged['masks']} masks, "
                   f"{merged['duplicates']} duplicate rows (first kept; {merged['disagreeing']} disagreed)")
        write_report(out, echo=echo)
        return
    if report_only:
        write_report(out, echo=click.echo)
        return
    if data is None:
        raise click.UsageError("--data is required (a TCMA folder, a table file, or 'example')")
    fit = _hparams(fit_settings)
    given = dict(seeds=seeds, first_seed=first_seed, cancers=_items(cancers), methods=_methods(methods),
                 ablations=tuple(select_ablations(ablations)) if ablations is not None else None,
                 regimes=_items(regimes), variants=_items(variants), ablation_regimes=_items(ablation_regimes),
                 ablation_variants=_items(ablation_variants), pretrain_steps=pretrain_steps, draws=draws,
                 sampler=sampler, max_samples=max_samples, p2_lineage=p2_lineage, device=device,
                 p2_hide_zeros=p2_hide_zeros or None)
    if no_pretrain:
        given["pretrain"] = False
    if quick:
        settings = BenchmarkSettings.quick_preset(**given)
        settings.model.update(_hparams(model_settings))
        settings.fit.update(fit)
    else:
        settings = BenchmarkSettings(**{k: v for k, v in given.items() if v is not None},
                                     model=_hparams(model_settings), fit=fit)
    # the command line as typed: `depmicro benchmark ...` or `python -m pydepmicro.cli benchmark ...`
    launched = bool(sys.argv) and sys.argv[0].endswith(("depmicro", "pydepmicro/cli.py")) and "benchmark" in sys.argv
    argv = sys.argv if launched else ["depmicro", "benchmark", "(from Python)"]
    command = "depmicro " + " ".join(shlex.quote(a) for a in argv[1:])
    run_benchmark(data, out, settings, echo=echo, command=command)
    click.echo(f"benchmark written to {out} (results.csv, summary.md, figures/)")
