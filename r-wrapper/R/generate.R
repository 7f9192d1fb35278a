## depmicro_generate(): synthetic samples from a trained model. The arguments are checked here,
## .generate_python() (the one place that talks to Python for this verb) returns the counts taxa x
## samples, and the result is wrapped as a matrix, a phyloseq object or a SummarizedExperiment.

depmicro_generate <- function(model, n = NULL, meta = NULL, ..., library_size = NULL,
    seed = NULL, as = c("matrix", "phyloseq", "SummarizedExperiment")) {
    as <- .generate_as(as)
    if (missing(model) || is.null(model)) {
        .abort(paste0("model is needed: a model from depmicro_train() or depmicro_load_model(), ",
            "or the path of a model folder"), class = "depmicro_argument_error")
    }
    n <- .generate_n(n)
    frame <- .generate_meta(meta)
    if (is.null(n) && is.null(frame)) {
        .abort(paste0("say how many samples to generate: n = 100, or meta = a data.frame with ",
            "one row per sample"), class = "depmicro_argument_error")
    }
    library_size <- .generate_library_size(library_size)
    options <- .options(...)
    out <- .generate_python(model, n, frame, library_size, options, seed)
    switch(as,
        matrix = out$counts,
        phyloseq = .generated_phyloseq(out$counts, frame),
        SummarizedExperiment = .generated_se(out$counts, frame))
}

## The Python call: the model and the metadata in, samples x taxa out, returned taxa x samples.
## The sample ids are checked to be the row names of meta when it is given.
.generate_python <- function(model, n, frame, library_size, options, seed) {
    model_arg <- .model_arg(model)
    seed <- .seed(seed)
    api <- .depmicro_api()
    meta_args <- .frame_args(frame, "meta")
    result <- .check_status(do.call(api$generate, c(list(model = model_arg, n = n), meta_args,
        list(meta_ids = if (is.null(frame)) NULL else as.list(rownames(frame)),
            library_size = library_size, seed = seed, options = options,
            progress = .progress()))), call = NULL)
    sample_ids <- as.character(unlist(result$sample_ids))
    taxa_ids <- as.character(unlist(result$taxa_ids))
    if (!is.null(frame)) {
        .check_names(sample_ids, rownames(frame), "sample", "the engine")
    }
    if (inherits(model, "depmicro_model") && length(model$taxa)) {
        .check_names(taxa_ids, model$taxa, "taxon", "the engine")
    }
    list(counts = .from_python_matrix(result$counts, TRUE, sample_ids, taxa_ids),
        conditional = isTRUE(result$conditional), seconds = result$seconds)
}

.generate_as <- function(as) {
    choices <- c("matrix", "phyloseq", "SummarizedExperiment")
    if (!is.character(as) || length(as) < 1L || is.na(as[[1L]])) {
        .abort(paste0("as must be one of ", paste0("\"", choices, "\"", collapse = ", ")),
            class = "depmicro_argument_error", call = NULL)
    }
    if (identical(as, choices)) {
        return("matrix")
    }
    if (length(as) != 1L || !as %in% choices) {
        .abort(paste0("as must be one of ", paste0("\"", choices, "\"", collapse = ", "),
            ", not \"", paste(as, collapse = "\", \""), "\""),
            class = "depmicro_argument_error", call = NULL)
    }
    if (as != "matrix" && !requireNamespace(as, quietly = TRUE)) {
        .abort(paste0("as = \"", as, "\" needs the ", as, " package, which is not installed; ",
            "install it (Bioconductor: BiocManager::install(\"", as, "\")) or use as = \"matrix\""),
            class = "depmicro_argument_error", call = NULL)
    }
    as
}

.generate_n <- function(n) {
    if (is.null(n)) {
        return(NULL)
    }
    if (!is.numeric(n) || length(n) != 1L || is.na(n) || !is.finite(n) || n < 1 ||
        n != round(n) || n > .Machine$integer.max) {
        .abort("n must be NULL or one positive whole number (how many samples to generate)",
            class = "depmicro_argument_error", call = NULL)
    }
    as.integer(n)
}

## meta -> a data.frame of its usable columns with the new sample ids as row names; a frame without
## usable columns still names the samples (a model trained without metadata generates
## unconditionally under these names).
.generate_meta <- function(meta) {
    if (is.null(meta)) {
        return(NULL)
    }
    frame <- .as_frame(meta, "meta")
    if (is.null(frame)) {
        frame <- data.frame(row.names = rownames(meta))
    }
    if (nrow(frame) == 0L) {
        .abort("meta has no rows: give one row per sample to generate",
            class = "depmicro_argument_error", call = NULL)
    }
    frame
}

.generate_library_size <- function(library_size) {
    if (is.null(library_size)) {
        return(NULL)
    }
    if (!is.numeric(library_size) || length(library_size) < 1L || anyNA(library_size) ||
        any(!is.finite(library_size)) || any(library_size < 1)) {
        .abort(paste0("library_size must be NULL (read depths drawn like the training table's), ",
            "one number >= 1, or one such number per sample"),
            class = "depmicro_argument_error", call = NULL)
    }
    as.double(library_size)
}

## phyloseq() returns a lone otu_table as it is, so without sample data the object is made directly
.generated_phyloseq <- function(counts, frame) {
    otu <- phyloseq::otu_table(counts, taxa_are_rows = TRUE)
    if (!is.null(frame) && ncol(frame) > 0L) {
        result <- phyloseq::phyloseq(otu, phyloseq::sample_data(frame))
    } else {
        result <- methods::new("phyloseq", otu_table = otu)
    }
    ## phyloseq drops samples or taxa whose names do not match silently: check they did not
    .check_names(phyloseq::sample_names(result), colnames(counts), "sample", "phyloseq")
    .check_names(phyloseq::taxa_names(result), rownames(counts), "taxon", "phyloseq")
    result
}

.generated_se <- function(counts, frame) {
    if (!is.null(frame) && ncol(frame) > 0L) {
        return(SummarizedExperiment::SummarizedExperiment(assays = list(counts = counts),
            colData = frame))
    }
    SummarizedExperiment::SummarizedExperiment(assays = list(counts = counts))
}
