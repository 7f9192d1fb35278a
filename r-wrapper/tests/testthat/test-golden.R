## Golden test: for the same data and seed, depmicro_impute() in R equals `depmicro impute` run
## from the command line (a separate process that reads and writes TSV files). Also prints how long
## each took, i.e. the time the R bridge adds over the CLI (see inst/scripts/bridge_overhead.R for
## a fuller measurement).

write_taxa_tsv <- function(m, path) {
    out <- cbind(taxon_id = rownames(m),
        apply(m, 2, function(col) ifelse(is.na(col), "NA", formatC(col, digits = 17, format = "g"))))
    utils::write.table(out, path, sep = "\t", quote = FALSE, row.names = FALSE)
}

read_taxa_tsv <- function(path) {
    frame <- utils::read.delim(path, row.names = 1, check.names = FALSE, na.strings = "NA")
    as.matrix(frame)
}

test_that("the R result equals the depmicro impute CLI for the same data and seed", {
    skip_without_engine()
    info <- depmicro_configure()
    cli <- file.path(dirname(info$python), "depmicro")
    skip_if_not(file.exists(cli), paste("no depmicro command beside", info$python))
    ## large enough that torch's matrix products go through BLAS (inside R that needs torch
    ## loaded with RTLD_DEEPBIND, see pydepmicro/r_api.py; without it the last bits differ)
    m <- toy_counts(n_taxa = 40, n_samples = 60, seed = 3)
    dir <- tempfile("golden")
    dir.create(dir)
    input <- file.path(dir, "table.tsv")
    output <- file.path(dir, "imputed.tsv")
    write_taxa_tsv(m, input)
    settings <- unlist(lapply(names(tiny_model), function(key) {
        if (key %in% c("metadata", "device", "dependency")) return(NULL)
        c("--set", paste0(key, "=", tiny_model[[key]]))
    }))
    args <- c("impute", input, "-o", output, "--no-metadata", "--dependency", tiny_model$dependency,
        "--device", tiny_model$device, "--vae-steps", tiny_fit$vae_steps,
        "--dat-steps", tiny_fit$dat_steps, "--draws", tiny_impute$draws,
        "--sampler", tiny_impute$sampler, "--seed", "11", "--quiet", settings)
    cli_time <- system.time(
        log <- system2(cli, args, stdout = TRUE, stderr = TRUE,
            env = c("LD_LIBRARY_PATH=", "OMP_NUM_THREADS=1", "HF_HUB_OFFLINE=1")))
    expect_null(attr(log, "status"), label = paste(log, collapse = "\n"))
    r_time <- system.time(r <- impute_tiny(m, seed = 11))

    expected <- read_taxa_tsv(output)
    expect_identical(dimnames(expected), dimnames(m))
    ## %.17g in the file: the same doubles, up to the last bit of R's text parser
    expect_equal(r[, ], expected, tolerance = 1e-14)
    layers <- depmicro_layers(r)
    mask <- read_taxa_tsv(file.path(dir, "imputed.imputed_mask.tsv"))
    expect_identical(layers$imputed, mask == 1)
    spread <- read_taxa_tsv(file.path(dir, "imputed.spread.tsv"))  # written with 6 digits
    expect_equal(layers$spread, spread, tolerance = 1e-5)
    dropout <- read_taxa_tsv(file.path(dir, "imputed.dropout_prob.tsv"))
    expect_equal(layers$dropout_prob, dropout, tolerance = 1e-5)

    engine <- depmicro_layers(r)$engine_seconds
    message(sprintf(paste0("bridge timing (%d taxa x %d samples, tiny model): CLI process %.2f s; ",
        "depmicro_impute() in a warm R session %.2f s, of which the engine %.2f s; ",
        "the bridge adds %.3f s to the engine and %+.2f s relative to the CLI"),
        nrow(m), ncol(m), cli_time[["elapsed"]], r_time[["elapsed"]], engine,
        r_time[["elapsed"]] - engine, r_time[["elapsed"]] - cli_time[["elapsed"]]))
})
