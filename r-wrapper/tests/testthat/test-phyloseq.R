test_that("phyloseq objects come back in the same orientation with the same names", {
    skip_without_engine()
    skip_if_not_installed("phyloseq")
    for (rows in c(TRUE, FALSE)) {
        ps <- toy_phyloseq(taxa_are_rows = rows)
        out <- impute_tiny(ps, seed = 1)
        expect_s4_class(out, "phyloseq")
        expect_identical(phyloseq::taxa_are_rows(out), rows)
        expect_identical(phyloseq::sample_names(out), phyloseq::sample_names(ps))
        expect_identical(phyloseq::taxa_names(out), phyloseq::taxa_names(ps))
        expect_identical(phyloseq::sample_data(out), phyloseq::sample_data(ps))
        expect_identical(phyloseq::tax_table(out), phyloseq::tax_table(ps))
        before <- methods::as(phyloseq::otu_table(ps), "matrix")
        after <- methods::as(phyloseq::otu_table(out), "matrix")
        expect_identical(dimnames(after), dimnames(before))
        expect_false(anyNA(after))
        kept <- !is.na(before) & before > 0
        expect_identical(after[kept], before[kept])
        layers <- depmicro_layers(out)
        expect_identical(dimnames(layers$imputed), dimnames(before))
        expect_true(all(layers$imputed[is.na(before)]))
    }
})

test_that("both orientations give the same imputation", {
    skip_without_engine()
    skip_if_not_installed("phyloseq")
    a <- impute_tiny(toy_phyloseq(TRUE), seed = 4)
    b <- impute_tiny(toy_phyloseq(FALSE), seed = 4)
    expect_identical(methods::as(phyloseq::otu_table(a), "matrix"),
        t(methods::as(phyloseq::otu_table(b), "matrix")))
})

test_that("sample_data is the metadata: its ids must match the samples", {
    skip_without_engine()
    skip_if_not_installed("phyloseq")
    ps <- toy_phyloseq()
    meta <- toy_meta(methods::as(phyloseq::otu_table(ps), "matrix"))
    rownames(meta)[1] <- "not_a_sample"
    expect_error(suppressWarnings(impute_tiny(ps, meta = meta)), class = "depmicro_id_mismatch_error")
})

test_that("layers follow the object through prune_samples()", {
    skip_without_engine()
    skip_if_not_installed("phyloseq")
    out <- impute_tiny(toy_phyloseq(), seed = 1)
    keep <- phyloseq::sample_names(out)[1:5]
    sub <- phyloseq::prune_samples(keep, out)
    expect_identical(colnames(depmicro_layers(sub)$spread), keep)
})
