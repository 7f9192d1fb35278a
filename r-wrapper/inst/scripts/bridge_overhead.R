#!/usr/bin/env Rscript
## How much time the R bridge adds over the command line, on the same data and settings.
##
##   RETICULATE_PYTHON=/path/to/.venv/bin/python Rscript inst/scripts/bridge_overhead.R [taxa] [samples] [repeats]
##
## Runs `depmicro impute` (a fresh Python process that reads and writes TSV files) and
## depmicro_impute() on the same matrix, seed and tiny model, `repeats` times each, and prints:
##   - CLI: wall time of the whole process (Python start, imports, reading, training, imputing, writing);
##   - R, once per session: finding and starting Python, importing the engine, a first tiny call;
##   - R, warm: later calls in the same session;
##   - engine: the time spent inside pydepmicro.impute() (reported by pydepmicro.r_api);
##   - bridge: R warm minus engine, i.e. the conversions, the transposes and reticulate.
## Also checks that the R and CLI results are equal. Needs the depmicro package installed.

suppressPackageStartupMessages(library(depmicro))
args <- as.integer(commandArgs(trailingOnly = TRUE))
n_taxa <- if (length(args) >= 1) args[[1]] else 40L
n_samples <- if (length(args) >= 2) args[[2]] else 100L
repeats <- if (length(args) >= 3) args[[3]] else 3L

Sys.setenv(OMP_NUM_THREADS = "1", HF_HUB_OFFLINE = "1")
options(depmicro.threads = 1L)

## a sparse table made without touching R's random number generator state of the caller
counts <- local({
    old <- if (exists(".Random.seed", globalenv())) get(".Random.seed", globalenv())
    on.exit(if (!is.null(old)) assign(".Random.seed", old, globalenv()))
    set.seed(1)
    depth <- rpois(n_samples, 500)
    m <- sapply(depth, function(d) rpois(n_taxa, d * seq(1, 0.05, length.out = n_taxa) / n_taxa * 4))
    m <- m * matrix(rbinom(n_taxa * n_samples, 1, 0.6), n_taxa, n_samples)
    storage.mode(m) <- "double"
    dimnames(m) <- list(paste0("OTU", seq_len(n_taxa)), paste0("S", seq_len(n_samples)))
    m
})

model <- list(d_z = 2, vae_d_model = 16, vae_layers = 1, vae_heads = 2, d_model = 16, n_layers = 1,
    n_heads = 2, n_blocks = 3, num_train_timesteps = 100)
steps <- list(vae_steps = 50, dat_steps = 50)
draws <- list(draws = 2, sampler = "ddim:5")
seed <- 3L

dir <- tempfile("overhead")
dir.create(dir)
input <- file.path(dir, "table.tsv")
body <- cbind(taxon_id = rownames(counts), apply(counts, 2, formatC, digits = 17, format = "g"))
utils::write.table(body, input, sep = "\t", quote = FALSE, row.names = FALSE)

t_first <- system.time(info <- depmicro_configure())[["elapsed"]]  # Python start + imports
cli <- file.path(dirname(info$python), "depmicro")
cli_args <- function(output) {
    c("impute", input, "-o", output, "--no-metadata", "--dependency", "ftest", "--device", "cpu",
        "--seed", seed, "--vae-steps", steps$vae_steps, "--dat-steps", steps$dat_steps,
        "--draws", draws$draws, "--sampler", draws$sampler, "--quiet", "--force",
        unlist(lapply(names(model), function(k) c("--set", paste0(k, "=", model[[k]])))))
}
run_r <- function() {
    do.call(depmicro_impute, c(list(counts, seed = seed, metadata = FALSE, dependency = "ftest",
        device = "cpu"), model, steps, draws))
}

## warm: the first call also imports the model code (torch is imported by depmicro_configure())
t_first <- t_first + system.time(
    do.call(depmicro_impute, c(list(counts[, 1:20], seed = seed, metadata = FALSE,
        dependency = "ftest", device = "cpu", vae_steps = 1, dat_steps = 1, draws = 1,
        sampler = "ddim:2"), model)))[["elapsed"]]
cli_times <- r_times <- engine <- numeric(repeats)
for (k in seq_len(repeats)) {
    output <- file.path(dir, "imputed.tsv")
    cli_times[k] <- system.time(
        log <- system2(cli, cli_args(output), stdout = TRUE, stderr = TRUE,
            env = c("LD_LIBRARY_PATH=", "OMP_NUM_THREADS=1")))[["elapsed"]]
    if (!is.null(attr(log, "status"))) stop(paste(log, collapse = "\n"))
    timing <- system.time(result <- run_r())[["elapsed"]]
    r_times[k] <- timing
    engine[k] <- depmicro_layers(result)$engine_seconds
}
expected <- as.matrix(utils::read.delim(file.path(dir, "imputed.tsv"), row.names = 1,
    check.names = FALSE))
same <- isTRUE(all.equal(result[, ], expected, tolerance = 1e-14))

bridge <- r_times - engine
lines <- c(
    sprintf("bridge overhead, %d taxa x %d samples, tiny model (%d + %d training steps), %d repeats:",
        n_taxa, n_samples, steps$vae_steps, steps$dat_steps, repeats),
    sprintf("  CLI process (depmicro impute)      median %6.2f s  (min %.2f)", median(cli_times), min(cli_times)),
    sprintf("  R, start Python + import + warm-up %6.2f s (once per session)", t_first),
    sprintf("  R, warm depmicro_impute()          median %6.2f s  (min %.2f)", median(r_times), min(r_times)),
    sprintf("  engine time inside the R call      median %6.2f s", median(engine)),
    sprintf("  bridge (R warm - engine)           median %6.3f s  (%.1f%% of the R call)",
        median(bridge), 100 * median(bridge / r_times)),
    sprintf("  R warm - CLI                       median %+6.2f s", median(r_times - cli_times)),
    sprintf("  R result equals CLI result: %s", same))
writeLines(lines)
