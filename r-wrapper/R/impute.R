## depmicro_impute(): one generic, methods for matrix / data.frame / phyloseq /
## SummarizedExperiment. Every method turns its object into .input(), calls .impute_python() (the
## one place that talks to Python for this verb) and puts the answer back into the same kind of
## object, in the same orientation, with the names checked.

depmicro_impute <- function(x, meta = NULL, model = NULL, ..., seed = NULL) {
    UseMethod("depmicro_impute")
}

depmicro_impute.default <- function(x, meta = NULL, model = NULL, ..., seed = NULL) {
    .abort(paste0("depmicro_impute() works on a matrix, a data.frame, a phyloseq object or a ",
        "SummarizedExperiment, not on an object of class ", paste(class(x), collapse = "/")),
        class = "depmicro_argument_error")
}

## The Python call: samples x taxa in, samples x taxa out; the ids are checked to come back
## unchanged. Returns the layers in the input's orientation.
.impute_python <- function(input, model, options, seed) {
    model <- .model_arg(model)
    seed <- .seed(seed)
    api <- .depmicro_api()
    result <- .check_status(do.call(api$impute, c(.python_args(input),
        list(model = model, seed = seed, options = options, progress = .progress()))),
        call = NULL)
    sample_ids <- unlist(result$sample_ids)
    taxa_ids <- unlist(result$taxa_ids)
    .check_names(sample_ids, input$sample_ids, "sample", "the engine")
    .check_names(taxa_ids, input$taxa_ids, "taxon", "the engine")
    back <- function(m) .from_python_matrix(m, input$taxa_are_rows, sample_ids, taxa_ids)
    list(
        counts = back(result$counts),
        layers = list(imputed = back(result$imputed), spread = back(result$spread),
            dropout_prob = back(result$dropout_prob), presence_prob = back(result$presence_prob)),
        summary = result$summary, options = result$options, seconds = result$seconds)
}

.check_names <- function(after, before, what, where) {
    if (!identical(as.character(after), as.character(before))) {
        changed <- setdiff(union(before, after), intersect(before, after))
        .abort(paste0(where, " changed the ", what, " names (", length(changed),
            " differ, e.g. ", paste(utils::head(changed, 3), collapse = ", "),
            "); nothing was returned"), class = "depmicro_names_error", call = NULL)
    }
}

.info <- function(out) {
    c(out$layers, list(summary = out$summary, options = out$options,
        engine_seconds = out$seconds))
}

depmicro_impute.matrix <- function(x, meta = NULL, model = NULL, ..., seed = NULL,
    taxa_are_rows = TRUE) {
    names_given <- dimnames(x)
    if (is.null(rownames(x)) || is.null(colnames(x))) {
        rows <- if (taxa_are_rows) "taxon_" else "sample_"
        cols <- if (taxa_are_rows) "sample_" else "taxon_"
        dimnames(x) <- list(
            if (is.null(rownames(x))) paste0(rows, seq_len(nrow(x))) else rownames(x),
            if (is.null(colnames(x))) paste0(cols, seq_len(ncol(x))) else colnames(x))
    }
    input <- .input(x, taxa_are_rows, meta = meta)
    out <- .impute_python(input, model, .options(...), seed)
    result <- out$counts
    dimnames(result) <- names_given
    layers <- lapply(out$layers, function(m) {
        dimnames(m) <- names_given
        m
    })
    out$layers <- layers
    attr(result, "depmicro") <- .info(out)
    result
}

depmicro_impute.data.frame <- function(x, meta = NULL, model = NULL, ..., seed = NULL,
    taxa_are_rows = TRUE) {
    depmicro_impute.matrix(as.matrix(x), meta = meta, model = model, ..., seed = seed,
        taxa_are_rows = taxa_are_rows)
}

depmicro_impute.phyloseq <- function(x, meta = NULL, model = NULL, ..., seed = NULL) {
    input <- .phyloseq_input(x, meta)
    out <- .impute_python(input, model, .options(...), seed)
    before_samples <- phyloseq::sample_names(x)
    before_taxa <- phyloseq::taxa_names(x)
    result <- x
    phyloseq::otu_table(result) <- phyloseq::otu_table(out$counts,
        taxa_are_rows = input$taxa_are_rows)
    ## phyloseq drops samples or taxa whose names do not match silently: check they did not
    .check_names(phyloseq::sample_names(result), before_samples, "sample", "phyloseq")
    .check_names(phyloseq::taxa_names(result), before_taxa, "taxon", "phyloseq")
    if (!identical(phyloseq::taxa_are_rows(result), input$taxa_are_rows)) {
        .abort("phyloseq changed the orientation of the otu_table", class = "depmicro_names_error")
    }
    attr(result, "depmicro") <- .info(out)
    result
}

depmicro_impute.SummarizedExperiment <- function(x, meta = NULL, model = NULL, ..., seed = NULL,
    assay = "counts", name = "imputed") {
    if (!is.character(name) || length(name) != 1L || is.na(name) || !nzchar(name)) {
        .abort("name must be one assay name", class = "depmicro_argument_error")
    }
    new <- c(name, paste0(name, c("_mask", "_spread", "_dropout_prob")))
    taken <- intersect(new, SummarizedExperiment::assayNames(x))
    if (length(taken)) {
        .abort(paste0("the SummarizedExperiment already has assay(s) ",
            paste(taken, collapse = ", "), "; depmicro never overwrites: pass another name = ",
            "(the assays are name, name_mask, name_spread and name_dropout_prob)"),
            class = "depmicro_exists_error")
    }
    input <- .se_input(x, meta, assay)
    out <- .impute_python(input, model, .options(...), seed)
    values <- list(out$counts, out$layers$imputed, out$layers$spread, out$layers$dropout_prob)
    result <- x
    for (k in seq_along(new)) {
        SummarizedExperiment::assay(result, new[[k]], withDimnames = TRUE) <- values[[k]]
    }
    extra <- methods::slot(result, "metadata")
    extra$depmicro <- list(summary = out$summary, options = out$options,
        engine_seconds = out$seconds, assay = assay, assays = new)
    methods::slot(result, "metadata") <- extra
    result
}

## The imputation layers of a result, in the object's orientation and restricted to its current
## samples and taxa (phyloseq keeps the attribute through prune_samples() and friends).
depmicro_layers <- function(x) {
    if (is(x, "SummarizedExperiment")) {
        info <- methods::slot(x, "metadata")$depmicro
        if (is.null(info)) {
            .abort("this SummarizedExperiment was not made by depmicro_impute()",
                class = "depmicro_argument_error")
        }
        get <- function(i) SummarizedExperiment::assay(x, info$assays[[i]])
        return(list(imputed = get(2L), spread = get(3L), dropout_prob = get(4L),
            summary = info$summary, options = info$options,
            engine_seconds = info$engine_seconds))
    }
    info <- attr(x, "depmicro", exact = TRUE)
    if (is.null(info)) {
        .abort("this object was not made by depmicro_impute() (it has no imputation layers)",
            class = "depmicro_argument_error")
    }
    if (is(x, "phyloseq")) {
        rows <- phyloseq::taxa_names(x)
        cols <- phyloseq::sample_names(x)
        if (!phyloseq::taxa_are_rows(x)) {
            rows <- phyloseq::sample_names(x)
            cols <- phyloseq::taxa_names(x)
        }
    } else {
        rows <- rownames(x)
        cols <- colnames(x)
    }
    matrices <- c("imputed", "spread", "dropout_prob", "presence_prob")
    for (layer in matrices) {
        m <- info[[layer]]
        if (!is.null(rows) && !is.null(cols)) {
            if (!all(rows %in% rownames(m)) || !all(cols %in% colnames(m))) {
                .abort("the imputation layers do not cover this object's samples and taxa",
                    class = "depmicro_names_error")
            }
            m <- m[rows, cols, drop = FALSE]
        }
        info[[layer]] <- m
    }
    info
}
