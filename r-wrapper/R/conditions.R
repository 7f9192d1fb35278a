## Typed conditions. Every error this package raises inherits from "depmicro_error"; errors the
## Python engine reports keep its class name, e.g. IdMismatchError becomes
## c("depmicro_id_mismatch_error", "depmicro_engine_error", "depmicro_error", "error", "condition"),
## so callers can catch exactly what they care about with tryCatch().

.depmicro_condition <- function(message, class = character(), call = NULL,
    type = "error", ...) {
    structure(
        class = c(class, paste0("depmicro_", type), type, "condition"),
        list(message = message, call = call, ...)
    )
}

.abort <- function(message, class = character(), call = sys.call(-1), ...) {
    stop(.depmicro_condition(message, class = class, call = call, ...))
}

.warn <- function(message, call = NULL) {
    warning(.depmicro_condition(message, call = call, type = "warning"))
}

## "IdMismatchError" -> "depmicro_id_mismatch_error"
.engine_class <- function(python_class) {
    snake <- tolower(gsub("([a-z0-9])([A-Z])", "\\1_\\2", python_class))
    paste0("depmicro_", snake)
}

## The status dict of every pydepmicro.r_api entry point: re-issue the engine's warnings, raise
## its error as a typed R condition, or return the payload.
.check_status <- function(result, call = sys.call(-1)) {
    for (text in unlist(result[["warnings"]])) {
        .warn(text, call = call)
    }
    if (!identical(result[["status"]], "ok")) {
        python_class <- result[["error_class"]]
        if (is.null(python_class)) {
            python_class <- "InternalError"
        }
        message <- result[["message"]]
        if (identical(python_class, "InternalError")) {
            message <- paste0(message, " (a bug in pydepmicro, not in your data: ",
                "please report it with the traceback in the condition's ",
                "'traceback' field)")
        }
        .abort(message,
            class = c(.engine_class(python_class), "depmicro_engine_error"),
            call = call, python_class = python_class,
            traceback = result[["traceback"]])
    }
    result
}
