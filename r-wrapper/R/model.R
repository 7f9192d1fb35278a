## Trained models: an R list around the Python DepMicroDiff object, plus what R can show without
## Python (taxa, hyperparameters, training summary) and the folder it was read from or saved to,
## so that a model whose Python object did not survive (a saved and restored R session) can be
## read again from there.

.new_model <- function(result, path = NULL) {
    structure(
        list(py = result$model, path = path, taxa = unlist(result$taxa),
            hparams = result$hparams, training = result$training,
            metadata_columns = unlist(result$metadata_columns), fitted = isTRUE(result$fitted),
            description = result$description),
        class = "depmicro_model")
}

## The Python object of a model (for r_api), or the folder to read it from.
.model_arg <- function(model) {
    if (is.null(model)) {
        return(NULL)
    }
    if (is.character(model) && length(model) == 1L && !is.na(model)) {
        return(normalizePath(model, mustWork = FALSE))
    }
    if (!inherits(model, "depmicro_model")) {
        .abort(paste0("model must be NULL, a model from depmicro_train() or ",
            "depmicro_load_model(), or the path of a model folder"),
            class = "depmicro_argument_error", call = NULL)
    }
    if (is.null(model$py) || reticulate::py_is_null_xptr(model$py)) {
        if (!is.null(model$path)) {
            return(model$path)
        }
        .abort(paste0("this model's Python object did not survive (it lives only as long as the ",
            "R session that made it); save models with depmicro_save_model() and read them ",
            "with depmicro_load_model()"), class = "depmicro_model_error", call = NULL)
    }
    model$py
}

depmicro_train <- function(x, meta = NULL, ..., seed = NULL, taxa_are_rows = TRUE,
    assay = "counts") {
    input <- .any_input(x, meta, taxa_are_rows, assay)
    options <- .options(...)
    seed <- .seed(seed)
    api <- .depmicro_api()
    result <- .check_status(do.call(api$train, c(.python_args(input),
        list(seed = seed, options = options, progress = .progress()))))
    .new_model(result)
}

depmicro_load_model <- function(path, device = "auto") {
    if (!is.character(path) || length(path) != 1L || is.na(path)) {
        .abort("path must be the folder of a saved model", class = "depmicro_argument_error")
    }
    path <- normalizePath(path, mustWork = FALSE)
    api <- .depmicro_api()
    result <- .check_status(api$load_model(path, device = device))
    .new_model(result, path = path)
}

depmicro_save_model <- function(model, path, overwrite = FALSE) {
    if (!inherits(model, "depmicro_model")) {
        .abort("model must come from depmicro_train() or depmicro_load_model()",
            class = "depmicro_argument_error")
    }
    .check_flag(overwrite, "overwrite")
    path <- normalizePath(path, mustWork = FALSE)
    api <- .depmicro_api()
    result <- .check_status(api$save_model(.model_arg(model), path, force = overwrite))
    model$path <- path
    attr(model, "files") <- unlist(result$files)
    invisible(model)
}

format.depmicro_model <- function(x, ...) {
    h <- x$hparams
    fit <- x$training$fit
    c(
        paste0("depmicro model (DepMicroDiff): ",
            if (x$fitted) paste(length(x$taxa), "taxa") else "VAE only, not fitted"),
        if (!is.null(h)) paste0("  d_model ", h$d_model, ", ", h$n_layers, " layers, ",
            h$n_blocks, " AR blocks, dependency ", h$dependency),
        if (!is.null(fit)) paste0("  trained on ", fit$n_train, " samples (", fit$n_val,
            " held out), seed ", fit$seed, ", ", fit$dependency_edges, " dependency edges"),
        paste0("  metadata: ", if (length(x$metadata_columns))
            paste(x$metadata_columns, collapse = ", ") else "none"),
        if (!is.null(x$path)) paste0("  folder: ", x$path)
    )
}

print.depmicro_model <- function(x, ...) {
    writeLines(format(x, ...))
    invisible(x)
}
