## depmicro_generate(): synthetic samples from a tiny model, in R's orientation, reproducible by
## seed, as a matrix, a phyloseq object or a SummarizedExperiment.

tiny_generate <- list(sampler = "ddim:5")

## one tiny model for the file, trained on first use
generate_model <- local({
    model <- NULL
    function() {
        if (is.null(model)) {
            model <<- do.call(depmicro_train, c(list(toy_counts(), seed = 1), tiny_model,
                tiny_fit))
        }
        model
    }
})

generate_tiny <- function(model, ...) {
    do.call(depmicro_generate, c(list(model), tiny_generate, list(...)))
}

test_that("generated counts are taxa x samples whole numbers, with no empty sample", {
    skip_without_engine()
    model <- generate_model()
    out <- generate_tiny(model, n = 7, seed = 1)
    expect_true(is.matrix(out))
    expect_type(out, "double")
    expect_identical(dim(out), c(10L, 7L))
    expect_identical(rownames(out), rownames(toy_counts()))
    expect_identical(rownames(out), model$taxa)
    expect_identical(colnames(out), paste0("synthetic_", 1:7))
    expect_false(anyNA(out))
    expect_true(all(out >= 0))
    expect_true(all(out == round(out)))
    expect_true(all(colSums(out) > 0))
    depth <- generate_tiny(model, n = 3, seed = 1, library_size = 500)
    expect_true(all(abs(colSums(depth) - 500) <= nrow(depth)))
})

test_that("the same seed gives the same samples, another seed others", {
    skip_without_engine()
    model <- generate_model()
    a <- generate_tiny(model, n = 6, seed = 3)
    b <- generate_tiny(model, n = 6, seed = 3)
    c <- generate_tiny(model, n = 6, seed = 4)
    expect_identical(a, b)
    expect_false(identical(a, c))
    ## seed = NULL draws the engine's seed from R's generator
    set.seed(11)
    d <- generate_tiny(model, n = 6)
    set.seed(11)
    e <- generate_tiny(model, n = 6)
    expect_identical(d, e)
})

test_that("meta names the samples; a model without metadata refuses metadata columns", {
    skip_without_engine()
    model <- generate_model()
    ids <- c("new_a", "new_b", "new_c")
    out <- generate_tiny(model, meta = data.frame(row.names = ids), seed = 1)
    expect_identical(colnames(out), ids)
    expect_identical(rownames(out), model$taxa)
    expect_error(generate_tiny(model, n = 2, meta = data.frame(row.names = ids), seed = 1),
        "3 rows", class = "depmicro_invalid_option_error")
    expect_error(generate_tiny(model, meta = data.frame(group = c("gut", "skin", "gut"),
        row.names = ids), seed = 1), "without metadata", class = "depmicro_engine_error")
    expect_error(generate_tiny(model, meta = data.frame(group = c("gut", "skin"))),
        "row names", class = "depmicro_argument_error")
})

test_that("as = \"phyloseq\" gives a phyloseq object with taxa as rows", {
    skip_without_engine()
    skip_if_not_installed("phyloseq")
    model <- generate_model()
    ps <- generate_tiny(model, n = 4, seed = 2, as = "phyloseq")
    expect_s4_class(ps, "phyloseq")
    expect_true(phyloseq::taxa_are_rows(ps))
    expect_identical(phyloseq::taxa_names(ps), model$taxa)
    expect_identical(unclass(methods::as(phyloseq::otu_table(ps), "matrix")),
        generate_tiny(model, n = 4, seed = 2))
})

test_that("as = \"SummarizedExperiment\" gives an assay counts", {
    skip_without_engine()
    skip_if_not_installed("SummarizedExperiment")
    model <- generate_model()
    se <- generate_tiny(model, n = 4, seed = 2, as = "SummarizedExperiment")
    expect_s4_class(se, "SummarizedExperiment")
    expect_identical(SummarizedExperiment::assayNames(se), "counts")
    expect_identical(SummarizedExperiment::assay(se, "counts"),
        generate_tiny(model, n = 4, seed = 2))
    expect_identical(colnames(se), paste0("synthetic_", 1:4))
})

test_that("a saved model generates the same samples from its folder", {
    skip_without_engine()
    model <- generate_model()
    folder <- file.path(tempfile("model"), "m")
    dir.create(dirname(folder))
    depmicro_save_model(model, folder)
    expect_identical(generate_tiny(folder, n = 5, seed = 6, device = "cpu"),
        generate_tiny(model, n = 5, seed = 6))
})

test_that("bad arguments are argument errors, before any Python work", {
    for (n in list(0, -2, 2.5, c(2, 3), NA_real_, "3", Inf)) {
        expect_error(depmicro_generate("no_such_model", n = n),
            "n must be", class = "depmicro_argument_error")
    }
    expect_error(depmicro_generate(n = 3), "model is needed", class = "depmicro_argument_error")
    expect_error(depmicro_generate(NULL, n = 3), "model is needed",
        class = "depmicro_argument_error")
    expect_error(depmicro_generate("no_such_model"), "how many",
        class = "depmicro_argument_error")
    expect_error(depmicro_generate("no_such_model", n = 3, as = "biom"), "as must be",
        class = "depmicro_argument_error")
    expect_error(depmicro_generate("no_such_model", n = 3, library_size = 0), "library_size",
        class = "depmicro_argument_error")
    expect_error(depmicro_generate("no_such_model", 3, NULL, 5), "named",
        class = "depmicro_argument_error")
})

test_that("unknown options and models without generation examples are engine errors", {
    skip_without_engine()
    model <- generate_model()
    expect_error(depmicro_generate(model, n = 2, draws = 3), "draws",
        class = "depmicro_invalid_option_error")
    plain <- do.call(depmicro_train, c(list(toy_counts(), seed = 1), tiny_model,
        list(vae_steps = 5, dat_steps = 5, generate_fraction = 0)))
    err <- expect_error(depmicro_generate(plain, n = 2), "without generation examples",
        class = "depmicro_error")
    expect_s3_class(err, "depmicro_engine_error")
})
