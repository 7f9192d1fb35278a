## R objects <-> the plain arrays and ids of pydepmicro.r_api.
##
## R is taxa x samples (phyloseq's default, SummarizedExperiment); Python is samples x taxa. The
## only transposes of the package are the two in .to_python_matrix() and .from_python_matrix():
## each direction transposes at most once. Ids always travel beside the matrix (conversions across
## reticulate drop dimnames), and the bridge checks they come back unchanged.

.to_python_matrix <- function(m, taxa_are_rows) {
    m <- as.matrix(m)
    if (!is.numeric(m) && !is.logical(m)) {
        .abort(paste0("the abundance matrix must be numeric, not ", typeof(m)),
            class = "depmicro_argument_error", call = NULL)
    }
    storage.mode(m) <- "double"
    if (taxa_are_rows) t(m) else m
}

.from_python_matrix <- function(m, taxa_are_rows, sample_ids, taxa_ids) {
    m <- as.matrix(m)
    dimnames(m) <- list(sample_ids, taxa_ids)
    if (taxa_are_rows) t(m) else m
}

.check_flag <- function(value, name) {
    if (!is.logical(value) || length(value) != 1L || is.na(value)) {
        .abort(paste0(name, " must be TRUE or FALSE"), class = "depmicro_argument_error",
            call = NULL)
    }
    value
}

## Everything the engine needs from an R object, samples x taxa.
.input <- function(m, taxa_are_rows, meta = NULL, taxonomy = NULL, what = "the matrix") {
    .check_flag(taxa_are_rows, "taxa_are_rows")
    counts <- .to_python_matrix(m, taxa_are_rows)
    if (is.null(rownames(counts)) || is.null(colnames(counts))) {
        .abort(paste0(what, " needs ",
            if (taxa_are_rows) "row names (taxa) and column names (samples)"
            else "row names (samples) and column names (taxa)"),
            class = "depmicro_argument_error", call = NULL)
    }
    list(counts = unname(counts), sample_ids = rownames(counts), taxa_ids = colnames(counts),
        meta = .as_frame(meta, "meta"), taxonomy = .as_frame(taxonomy, "taxonomy"),
        taxa_are_rows = taxa_are_rows)
}

## data.frame-like (data.frame, phyloseq sample_data, S4Vectors DataFrame, character matrix such
## as a tax_table) -> data.frame with its row names, or NULL when it has no usable column.
.as_frame <- function(x, what) {
    if (is.null(x)) {
        return(NULL)
    }
    if (is.matrix(x)) {
        x <- as.data.frame(unclass(x), stringsAsFactors = FALSE)
    } else if (!is.data.frame(x)) {
        x <- tryCatch(methods::as(x, "data.frame"), error = function(e) as.data.frame(x))
    }
    if (is.null(rownames(x)) || .row_names_info(x) < 0L) {
        .abort(paste0(what, " needs row names: the ",
            if (what == "taxonomy") "taxon" else "sample", " ids"),
            class = "depmicro_argument_error", call = NULL)
    }
    keep <- vapply(x, function(col) is.atomic(col) && is.null(dim(col)), logical(1))
    x <- x[, keep, drop = FALSE]
    if (ncol(x) == 0L) NULL else x
}

## data.frame -> arguments of r_api: columns (numeric as double, the rest as character) and their
## NA masks, which reticulate cannot carry inside a character vector.
.frame_args <- function(frame, prefix) {
    if (is.null(frame)) {
        out <- list(NULL, NULL)
        names(out) <- paste0(prefix, c("", "_na"))
        return(out)
    }
    columns <- lapply(frame, function(col) {
        if (is.numeric(col) && !is.factor(col)) {
            return(as.double(col))
        }
        col <- as.character(col)
        col[is.na(col)] <- ""
        as.list(col)
    })
    na <- lapply(frame, function(col) as.list(is.na(col)))
    out <- list(columns, na)
    names(out) <- paste0(prefix, c("", "_na"))
    out
}

.python_args <- function(input) {
    c(
        list(counts = input$counts, sample_ids = as.list(input$sample_ids),
            taxa_ids = as.list(input$taxa_ids)),
        .frame_args(input$meta, "meta"),
        list(meta_ids = if (is.null(input$meta)) NULL else as.list(rownames(input$meta))),
        .frame_args(input$taxonomy, "taxonomy")
    )
}

## phyloseq / SummarizedExperiment / matrix -> .input(); used by train and dependencies
.any_input <- function(x, meta, taxa_are_rows, assay) {
    if (is(x, "phyloseq")) {
        return(.phyloseq_input(x, meta))
    }
    if (is(x, "SummarizedExperiment")) {
        return(.se_input(x, meta, assay))
    }
    if (is.matrix(x) || is.data.frame(x)) {
        return(.input(as.matrix(x), taxa_are_rows, meta = meta))
    }
    .abort(paste0("depmicro works on a matrix, a data.frame, a phyloseq object or a ",
        "SummarizedExperiment, not on an object of class ", paste(class(x), collapse = "/")),
        class = "depmicro_argument_error", call = NULL)
}

.need <- function(package) {
    if (!requireNamespace(package, quietly = TRUE)) {
        .abort(paste0("the ", package, " package is needed for this object but is not installed"),
            class = "depmicro_argument_error", call = NULL)
    }
}

.phyloseq_input <- function(x, meta) {
    .need("phyloseq")
    otu <- phyloseq::otu_table(x)
    taxa_are_rows <- phyloseq::taxa_are_rows(otu)
    if (is.null(meta)) {
        meta <- phyloseq::sample_data(x, errorIfNULL = FALSE)
    }
    taxonomy <- phyloseq::tax_table(x, errorIfNULL = FALSE)
    if (!is.null(taxonomy)) {
        taxonomy <- methods::as(taxonomy, "matrix")
    }
    .input(methods::as(otu, "matrix"), taxa_are_rows, meta = meta, taxonomy = taxonomy,
        what = "the otu_table")
}

.se_input <- function(x, meta, assay) {
    .need("SummarizedExperiment")
    if (!is.character(assay) || length(assay) != 1L ||
        !assay %in% SummarizedExperiment::assayNames(x)) {
        .abort(paste0("the SummarizedExperiment has no assay '", paste(assay, collapse = ", "),
            "' (it has: ", paste(SummarizedExperiment::assayNames(x), collapse = ", "),
            "); name the abundances with assay = \"...\""),
            class = "depmicro_argument_error", call = NULL)
    }
    if (is.null(meta)) {
        meta <- SummarizedExperiment::colData(x)
        meta <- if (ncol(meta) > 0L) as.data.frame(meta, optional = TRUE) else NULL
    }
    taxonomy <- SummarizedExperiment::rowData(x)
    taxonomy <- if (ncol(taxonomy) > 0L) as.data.frame(taxonomy, optional = TRUE) else NULL
    .input(as.matrix(SummarizedExperiment::assay(x, assay, withDimnames = TRUE)), TRUE,
        meta = meta, taxonomy = taxonomy, what = paste0("assay '", assay, "'"))
}

## seed = NULL: an integer drawn from R's random number generator, so that set.seed() in the
## user's script makes a run reproducible (the package itself never sets the seed).
.seed <- function(seed) {
    if (is.null(seed)) {
        return(sample.int(.Machine$integer.max, 1L))
    }
    if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed != round(seed)) {
        .abort("seed must be NULL or one whole number", class = "depmicro_argument_error",
            call = NULL)
    }
    as.integer(seed)
}

## the engine's options: named, as the Python engine spells them (dots become underscores)
.options <- function(...) {
    options <- list(...)
    if (length(options) && (is.null(names(options)) || any(!nzchar(names(options))))) {
        .abort(paste0("options in ... must be named, e.g. vae_steps = 200, draws = 5, ",
            "metadata = FALSE"), class = "depmicro_argument_error", call = NULL)
    }
    options
}

.progress <- function() {
    isTRUE(getOption("depmicro.verbose", FALSE))
}
