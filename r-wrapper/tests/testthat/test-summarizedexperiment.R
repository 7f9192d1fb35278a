make_se <- function() {
    m <- toy_counts()
    SummarizedExperiment::SummarizedExperiment(assays = list(counts = m),
        colData = toy_meta(m))
}

test_that("a SummarizedExperiment gains an 'imputed' assay and keeps 'counts'", {
    skip_without_engine()
    skip_if_not_installed("SummarizedExperiment")
    se <- make_se()
    out <- impute_tiny(se, seed = 1)
    expect_s4_class(out, "SummarizedExperiment")
    expect_identical(SummarizedExperiment::assayNames(out),
        c("counts", "imputed", "imputed_mask", "imputed_spread", "imputed_dropout_prob"))
    expect_identical(SummarizedExperiment::assay(out, "counts"), SummarizedExperiment::assay(se, "counts"))
    imputed <- SummarizedExperiment::assay(out, "imputed")
    expect_identical(dimnames(imputed), dimnames(se))
    expect_false(anyNA(imputed))
    mask <- SummarizedExperiment::assay(out, "imputed_mask")
    expect_type(mask, "logical")
    expect_true(all(mask[is.na(SummarizedExperiment::assay(se, "counts"))]))
    expect_identical(SummarizedExperiment::colData(out), SummarizedExperiment::colData(se))
    expect_identical(depmicro_layers(out)$imputed, mask)
    expect_identical(SummarizedExperiment::assayNames(se), "counts")  # the input is untouched
})

test_that("existing assays are never overwritten; another assay can be read", {
    skip_without_engine()
    skip_if_not_installed("SummarizedExperiment")
    out <- impute_tiny(make_se(), seed = 1)
    expect_error(impute_tiny(out, seed = 1), class = "depmicro_exists_error")
    again <- impute_tiny(out, seed = 1, name = "imputed2")
    expect_true("imputed2" %in% SummarizedExperiment::assayNames(again))
    se <- make_se()
    SummarizedExperiment::assay(se, "raw") <- SummarizedExperiment::assay(se, "counts")
    expect_error(impute_tiny(se, assay = "missing_assay"), class = "depmicro_argument_error")
    from_raw <- impute_tiny(se, seed = 1, assay = "raw")
    expect_identical(SummarizedExperiment::assay(from_raw, "imputed"),
        SummarizedExperiment::assay(out, "imputed"))
})
