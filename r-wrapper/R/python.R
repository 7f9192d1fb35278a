## Finding and loading the Python engine.
##
## Python is never touched by library(depmicro): the first call that needs the engine (or
## depmicro_configure()) picks the Python, checks it in a separate process (so that a wrong
## Python leaves reticulate unbound and the session usable), then binds reticulate to it and
## imports pydepmicro.r_api, which is cached for the session.

.state <- new.env(parent = emptyenv())

## the oldest pydepmicro and r_api contract this package works with
.min_pydepmicro <- "0.2.0"
.api_version <- 2L

.python_sources <- function() {
    list(
        "option depmicro.python" = getOption("depmicro.python"),
        "environment variable DEPMICRO_PYTHON" = Sys.getenv("DEPMICRO_PYTHON"),
        "environment variable RETICULATE_PYTHON" = Sys.getenv("RETICULATE_PYTHON")
    )
}

## Which Python to use, and why: the option depmicro.python, else DEPMICRO_PYTHON, else
## RETICULATE_PYTHON, else the one reticulate is already bound to, else python3 on the PATH.
.find_python <- function() {
    sources <- .python_sources()
    for (what in names(sources)) {
        value <- sources[[what]]
        if (!is.null(value) && length(value) == 1L && !is.na(value) && nzchar(value)) {
            return(list(python = .absolute(value), source = what))
        }
    }
    if (reticulate::py_available(initialize = FALSE)) {
        return(list(python = reticulate::py_config()$python,
            source = "the Python reticulate already uses"))
    }
    found <- Sys.which("python3")
    list(python = unname(found), source = "python3 on the PATH")
}

.install_hint <- function(python) {
    if (!nzchar(python)) {
        python <- "/path/to/venv/bin/python"
    }
    paste0(
        "Install it into that Python with\n",
        "    \"", python, "\" -m pip install \"numpy<2\" /path/to/pydepmicro\n",
        "where /path/to/pydepmicro is the pydepmicro source folder (the one holding ",
        "pyproject.toml, the parent of r-wrapper/; `bash .ci/setup` there makes .venv with ",
        "everything). Or name a Python that has it, before the first depmicro call of the ",
        "session:\n",
        "    options(depmicro.python = \"/path/to/venv/bin/python\")  or  ",
        "Sys.setenv(DEPMICRO_PYTHON = \"/path/to/venv/bin/python\")"
    )
}

## Child Pythons started from R inherit R's LD_LIBRARY_PATH, which puts the system's libpython
## before the one a pyenv/venv Python was built with (../shared/DESIGN.md); clear it for them.
.python_env <- function() {
    c("LD_LIBRARY_PATH=", "OMP_NUM_THREADS=1")
}

## Ask `python` (in its own process) for its version and those of pydepmicro and numpy.
.probe_python <- function(python, source) {
    if (!nzchar(python) || !file.exists(python)) {
        .abort(paste0(
            "No Python found (", source, ": '", python, "'). depmicro needs a Python ",
            "(>= 3.10) with the pydepmicro package. ", .install_hint(python)),
            class = c("depmicro_python_missing", "depmicro_python_error"), call = NULL)
    }
    script <- paste(
        "import sys, importlib.metadata as m",
        "print('python=' + sys.version.split()[0])",
        "for name in ('pydepmicro', 'numpy'):",
        "    try: print(name + '=' + m.version(name))",
        "    except Exception: print(name + '=')",
        sep = "\n")
    out <- suppressWarnings(tryCatch(
        system2(python, c("-c", shQuote(script)), stdout = TRUE, stderr = TRUE,
            env = .python_env()),
        error = function(e) structure(conditionMessage(e), status = 127L)))
    status <- attr(out, "status")
    if (!is.null(status) && status != 0L) {
        .abort(paste0(
            "The Python at '", python, "' (", source, ") does not run: ",
            paste(out, collapse = " "), ". ", .install_hint("")),
            class = c("depmicro_python_missing", "depmicro_python_error"), call = NULL)
    }
    fields <- grep("^[a-z]+=", out, value = TRUE)
    values <- sub("^[a-z]+=", "", fields)
    names(values) <- sub("=.*$", "", fields)
    values
}

.check_versions <- function(python, source, versions) {
    have <- versions[["pydepmicro"]]
    if (is.na(have) || !nzchar(have)) {
        .abort(paste0(
            "pydepmicro is not installed in the Python at '", python, "' (", source, "). ",
            .install_hint(python)),
            class = c("depmicro_python_missing", "depmicro_python_error"), call = NULL)
    }
    if (utils::compareVersion(have, .min_pydepmicro) < 0) {
        .abort(paste0(
            "pydepmicro ", have, " in '", python, "' is too old: depmicro needs >= ",
            .min_pydepmicro, ". ", .install_hint(python)),
            class = c("depmicro_python_version", "depmicro_python_error"), call = NULL)
    }
    numpy <- versions[["numpy"]]
    if (!is.na(numpy) && nzchar(numpy) && utils::compareVersion(numpy, "2") >= 0 &&
        utils::packageVersion("reticulate") < "1.36") {
        .abort(paste0(
            "numpy ", numpy, " in '", python, "' cannot exchange arrays with reticulate ",
            utils::packageVersion("reticulate"), ". Install an older numpy there: \"",
            python, "\" -m pip install \"numpy<2\""),
            class = c("depmicro_python_version", "depmicro_python_error"), call = NULL)
    }
    invisible(TRUE)
}

## Two interpreters are the same environment when they live in the same folder (a venv's
## bin/python is a symlink to the base interpreter, so resolving links would confuse them).
.same_python <- function(a, b) {
    identical(normalizePath(dirname(a), mustWork = FALSE),
        normalizePath(dirname(b), mustWork = FALSE))
}

## an absolute path, without resolving the interpreter's own symlink (see .same_python)
.absolute <- function(path) {
    path <- path.expand(path)
    if (!nzchar(path)) {
        return(path)
    }
    file.path(normalizePath(dirname(path), mustWork = FALSE), basename(path))
}

## The pydepmicro.r_api module, loading Python on first use.
.depmicro_api <- function() {
    if (!is.null(.state$api)) {
        return(.state$api)
    }
    where <- .find_python()
    python <- where$python
    if (reticulate::py_available(initialize = FALSE)) {
        bound <- reticulate::py_config()$python
        if (!.same_python(bound, python)) {
            .abort(paste0(
                "reticulate already uses the Python at '", bound, "' in this session, but ",
                where$source, " names '", python, "'. A session can use one Python only: ",
                "restart R and call depmicro_configure() (or set the option) before anything ",
                "else starts Python."),
                class = "depmicro_python_error", call = NULL)
        }
        if (!reticulate::py_module_available("pydepmicro")) {
            .abort(paste0("pydepmicro is not installed in the Python reticulate uses ('", bound,
                "'). ", .install_hint(bound)),
                class = c("depmicro_python_missing", "depmicro_python_error"), call = NULL)
        }
    } else {
        .check_versions(python, where$source, .probe_python(python, where$source))
        tryCatch(reticulate::use_python(python, required = TRUE), error = function(e) {
            .abort(paste0("reticulate cannot use the Python at '", python, "': ",
                conditionMessage(e)), class = "depmicro_python_error", call = NULL)
        })
    }
    api <- tryCatch(
        reticulate::import("pydepmicro.r_api", convert = TRUE),
        error = function(e) {
            .abort(paste0("pydepmicro could not be imported from '", python, "': ",
                conditionMessage(e), ". ", .install_hint(python)),
                class = c("depmicro_python_missing", "depmicro_python_error"), call = NULL)
        })
    info <- .check_status(api$info())
    if (!identical(as.integer(info$api_version), .api_version)) {
        .abort(paste0(
            "pydepmicro ", info$pydepmicro_version, " speaks R interface version ",
            info$api_version, ", this depmicro package needs version ", .api_version,
            ": install matching versions of the two. ", .install_hint(python)),
            class = c("depmicro_python_version", "depmicro_python_error"), call = NULL)
    }
    if (isTRUE(info$host_blas) && identical(info$torch_loaded, "already loaded")) {
        .warn(paste0("torch was imported in this session before depmicro loaded it, so it uses ",
            "R's BLAS: slower, and results can differ in the last digits from the command ",
            "line's. Restart R and let depmicro start Python first."))
    }
    threads <- getOption("depmicro.threads")
    if (!is.null(threads)) {
        .check_status(api$set_threads(as.integer(threads)))
    }
    info[c("status", "warnings")] <- NULL
    info$source <- where$source
    .state$info <- info
    .state$api <- api
    api
}

## documented in man/depmicro_configure.Rd
depmicro_configure <- function(python = NULL, threads = NULL) {
    if (!is.null(python)) {
        if (!is.character(python) || length(python) != 1L || is.na(python)) {
            .abort("python must be one path (a character string)",
                class = "depmicro_argument_error")
        }
        options(depmicro.python = python)
    }
    if (!is.null(threads)) {
        options(depmicro.threads = as.integer(threads))
    }
    .state$api <- NULL
    .depmicro_api()
    invisible(.state$info)
}

depmicro_available <- function() {
    ok <- tryCatch(
        {
            .depmicro_api()
            TRUE
        },
        error = function(e) FALSE)
    ok
}
