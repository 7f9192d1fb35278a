test_that("a matrix, taxa as rows, comes back the same shape with the same names", {
    skip_without_engine()
    m <- toy_counts()
    r <- impute_tiny(m, seed = 1)
    expect_true(is.matrix(r))
    expect_identical(dimnames(r), dimnames(m))
    expect_false(anyNA(r))
    observed <- !is.na(m) & m > 0
    expect_identical(r[observed], m[observed])  # observed counts are kept exactly
    layers <- depmicro_layers(r)
    expect_identical(dimnames(layers$imputed), dimnames(m))
    expect_true(all(layers$imputed[is.na(m)]))
    expect_true(all(is.na(layers$dropout_prob[!is.na(m) & m > 0])))
    expect_true(all(layers$dropout_prob[!is.na(m) & m == 0] >= 0))
    expect_true(all(layers$spread[!is.na(layers$spread)] >= 0))
    expect_type(layers$summary, "character")
})

test_that("samples as rows (taxa_are_rows = FALSE) gives the transposed answer", {
    skip_without_engine()
    m <- toy_counts()
    a <- impute_tiny(m, seed = 2)
    b <- impute_tiny(t(m), seed = 2, taxa_are_rows = FALSE)
    expect_identical(dimnames(b), rev(dimnames(m)))
    expect_identical(t(b)[, ], a[, ])
    expect_identical(t(depmicro_layers(b)$imputed), depmicro_layers(a)$imputed)
})

test_that("a data.frame and a matrix without names work", {
    skip_without_engine()
    m <- toy_counts()
    d <- impute_tiny(as.data.frame(m), seed = 3)
    expect_identical(dimnames(d), dimnames(m))
    bare <- unname(m)
    r <- impute_tiny(bare, seed = 3)
    expect_null(dimnames(r))
    expect_equal(dim(r), dim(m))
})

test_that("the seed is passed down: same seed same result; NULL follows set.seed()", {
    skip_without_engine()
    m <- toy_counts()
    a <- impute_tiny(m, seed = 5)
    b <- impute_tiny(m, seed = 5)
    expect_same_imputation(a, b)
    set.seed(42)
    c1 <- impute_tiny(m)
    set.seed(42)
    c2 <- impute_tiny(m)
    expect_same_imputation(c1, c2)
    expect_identical(depmicro_layers(a)$options$seed, 5L)
})

test_that("engine errors arrive as typed R conditions with the engine's message", {
    skip_without_engine()
    m <- toy_counts()
    expect_error(impute_tiny(m, bogus_option = 1), class = "depmicro_invalid_option_error")
    e <- tryCatch(impute_tiny(m, bogus_option = 1), depmicro_engine_error = function(e) e)
    expect_s3_class(e, "depmicro_error")
    expect_identical(e$python_class, "InvalidOptionError")
    expect_match(conditionMessage(e), "unknown option(s): bogus_option", fixed = TRUE)
    neg <- m
    neg[1, 1] <- -1
    expect_error(impute_tiny(neg), class = "depmicro_invalid_value_error")
    meta <- toy_meta(m)[-1, ]
    expect_error(impute_tiny(m, meta = meta), class = "depmicro_id_mismatch_error")
    expect_error(depmicro_impute(list(1)), class = "depmicro_argument_error")
    expect_error(depmicro_impute(m, 1), class = "depmicro_argument_error")
})
