test_that("depmicro_dependencies() returns the edge table as a data.frame", {
    skip_without_engine()
    m <- toy_counts(n_taxa = 8, n_samples = 60, seed = 2)
    m[is.na(m)] <- 0
    m[2, ] <- m[1, ] * 2 + (m[1, ] > 0)  # a planted dependency: OTU2 follows OTU1
    edges <- depmicro_dependencies(m, method = "ftest", min_nonzero = 5, seed = 1)
    expect_s3_class(edges, "data.frame")
    expect_identical(names(edges), c("source", "target", "test", "statistic", "p", "q",
        "direction", "sign", "n", "log10_p"))
    expect_type(edges$source, "character")
    pair <- (edges$source == "OTU1" & edges$target == "OTU2") |
        (edges$source == "OTU2" & edges$target == "OTU1")
    expect_true(any(pair))
    expect_match(attr(edges, "test_used"), "ftest")
    expect_identical(attr(edges, "n_taxa"), 8L)
    all_pairs <- depmicro_dependencies(m, method = "ftest", min_nonzero = 5, all_pairs = TRUE)
    expect_gte(nrow(all_pairs), nrow(edges))
    expect_error(depmicro_dependencies(m, bogus = 1), class = "depmicro_invalid_option_error")
})
