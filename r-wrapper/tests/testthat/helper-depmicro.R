## Shared by the tests: a tiny, fast model configuration (metadata encoding off: no text encoder),
## small tables made in code, and a skip when no Python with pydepmicro is configured.

Sys.setenv(OMP_NUM_THREADS = "1", MKL_NUM_THREADS = "1", HF_HUB_OFFLINE = "1",
    TRANSFORMERS_OFFLINE = "1")
options(depmicro.threads = 1L)

tiny_model <- list(d_z = 2, vae_d_model = 16, vae_layers = 1, vae_heads = 2, d_model = 16,
    n_layers = 1, n_heads = 2, n_blocks = 3, dependency = "ftest", num_train_timesteps = 100,
    metadata = FALSE, device = "cpu")
tiny_fit <- list(vae_steps = 25, dat_steps = 25)
tiny_impute <- list(draws = 2, sampler = "ddim:5")
tiny <- c(tiny_model, tiny_fit, tiny_impute)

skip_without_engine <- function() {
    testthat::skip_if_not(depmicro_available(),
        "no Python with pydepmicro (set RETICULATE_PYTHON or DEPMICRO_PYTHON)")
}

impute_tiny <- function(x, ...) {
    do.call(depmicro_impute, c(list(x), tiny, list(...)))
}

## taxa x samples, integer counts with zeros, one missing entry per a few samples
toy_counts <- function(n_taxa = 10L, n_samples = 24L, seed = 1L) {
    rng_state <- if (exists(".Random.seed", globalenv())) get(".Random.seed", globalenv())
    on.exit(if (!is.null(rng_state)) assign(".Random.seed", rng_state, globalenv()))
    set.seed(seed)
    base <- rpois(n_samples, 20)
    m <- sapply(seq_len(n_samples), function(j) rpois(n_taxa, base[j] * seq(2, 0.2, length.out = n_taxa)))
    m <- m * matrix(rbinom(n_taxa * n_samples, 1, 0.6), n_taxa, n_samples)
    storage.mode(m) <- "double"
    dimnames(m) <- list(paste0("OTU", seq_len(n_taxa)), paste0("S", seq_len(n_samples)))
    m[cbind(c(1, 3, 5), c(2, 7, 11))] <- NA
    m
}

toy_meta <- function(m) {
    data.frame(group = rep(c("gut", "skin"), length.out = ncol(m)),
        depth = colSums(m, na.rm = TRUE), row.names = colnames(m))
}

toy_phyloseq <- function(taxa_are_rows = TRUE) {
    m <- toy_counts()
    tax <- cbind(Kingdom = rep("Bacteria", nrow(m)),
        Genus = c(paste0("G", seq_len(nrow(m) - 1L)), NA))
    rownames(tax) <- rownames(m)
    otu <- if (taxa_are_rows) m else t(m)
    phyloseq::phyloseq(phyloseq::otu_table(otu, taxa_are_rows = taxa_are_rows),
        phyloseq::sample_data(toy_meta(m)), phyloseq::tax_table(tax))
}

## two imputation results are the same: values, names and layers (not the timings)
expect_same_imputation <- function(a, b) {
    strip <- function(x) {
        info <- attr(x, "depmicro")
        attr(x, "depmicro") <- NULL
        info$options$seconds <- NULL
        info$engine_seconds <- NULL
        list(x, info)
    }
    testthat::expect_identical(strip(a), strip(b))
}
