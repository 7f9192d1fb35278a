## depmicro_dependencies(): the taxon dependency graph (Dep = C_dir OR C_mi) as an edge table.

depmicro_dependencies <- function(x, meta = NULL, ..., seed = NULL, taxa_are_rows = TRUE,
    assay = "counts", all_pairs = FALSE) {
    .check_flag(all_pairs, "all_pairs")
    input <- .any_input(x, meta, taxa_are_rows, assay)
    options <- .options(...)
    seed <- .seed(seed)
    api <- .depmicro_api()
    result <- .check_status(do.call(api$dependencies, c(.python_args(input),
        list(seed = seed, options = options, all_pairs = all_pairs))), call = NULL)
    .edge_frame(result)
}

.edge_frame <- function(result) {
    columns <- c("source", "target", "test", "statistic", "p", "q", "direction", "sign", "n",
        "log10_p")
    text <- c("source", "target", "test", "direction")
    edges <- lapply(columns, function(name) {
        values <- unlist(result$edges[[name]])
        if (name %in% text) as.character(values) else as.double(values)
    })
    names(edges) <- columns
    edges <- as.data.frame(edges, stringsAsFactors = FALSE)
    edges$n <- as.integer(edges$n)
    edges$sign <- as.integer(edges$sign)
    attr(edges, "test_used") <- result$test_used
    attr(edges, "excluded") <- data.frame(taxon = as.character(unlist(result$excluded$taxon)),
        reason = as.character(unlist(result$excluded$reason)), stringsAsFactors = FALSE)
    attr(edges, "n_taxa") <- as.integer(result$n_taxa)
    edges
}
