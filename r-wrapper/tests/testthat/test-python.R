## Finding Python: lazy loading, the install message when pydepmicro is missing (in a child R
## process, since one R session can bind reticulate to one Python only).

rscript <- file.path(R.home("bin"), "Rscript")

run_child <- function(code, env) {
    libs <- paste0("R_LIBS=", paste(.libPaths(), collapse = .Platform$path.sep))
    system2(rscript, c("--vanilla", "-e", shQuote(code)), stdout = TRUE, stderr = TRUE,
        env = c(libs, "RETICULATE_PYTHON=", env))
}

child_code <- paste(
    "library(depmicro)",
    "cat('LOADED_AT_LIBRARY=', reticulate::py_available(initialize = FALSE), '\\n', sep = '')",
    "m <- matrix(1:6, 2, dimnames = list(c('a', 'b'), c('s1', 's2', 's3')))",
    "e <- tryCatch(depmicro_impute(m), error = function(e) e)",
    "cat('CLASS=', paste(class(e), collapse = ','), '\\n', sep = '')",
    "cat('MESSAGE=', conditionMessage(e), '\\n', sep = '')",
    "cat('BOUND=', reticulate::py_available(initialize = FALSE), '\\n', sep = '')",
    sep = "; ")

test_that("library(depmicro) does not start Python; a missing Python gives the install message", {
    out <- run_child(child_code, "DEPMICRO_PYTHON=/nonexistent/bin/python")
    text <- paste(out, collapse = "\n")
    expect_match(text, "LOADED_AT_LIBRARY=FALSE", fixed = TRUE)
    expect_match(text, "CLASS=depmicro_python_missing,depmicro_python_error,depmicro_error,error",
        fixed = TRUE)
    expect_match(text, "No Python found", fixed = TRUE)
    expect_match(text, "-m pip install \"numpy<2\" /path/to/pydepmicro", fixed = TRUE)
    expect_match(text, "options(depmicro.python = ", fixed = TRUE)
    expect_match(text, "BOUND=FALSE", fixed = TRUE)
})

test_that("a Python without pydepmicro gives the exact install command for that Python", {
    python <- Sys.which("python3")
    skip_if(!nzchar(python), "no python3 on the PATH")
    ## the same interpreter with site-packages switched off: it certainly lacks pydepmicro
    fake <- file.path(tempfile("nopkg"), "python")
    dir.create(dirname(fake))
    writeLines(c("#!/bin/sh", paste0("exec \"", python, "\" -S -I \"$@\"")), fake)
    Sys.chmod(fake, "0755")
    out <- run_child(child_code, paste0("DEPMICRO_PYTHON=", fake))
    text <- paste(out, collapse = "\n")
    expect_match(text, "CLASS=depmicro_python_missing", fixed = TRUE)
    expect_match(text, paste0("pydepmicro is not installed in the Python at '", fake, "'"),
        fixed = TRUE)
    expect_match(text, paste0("\"", fake, "\" -m pip install \"numpy<2\" /path/to/pydepmicro"),
        fixed = TRUE)
    expect_match(text, "BOUND=FALSE", fixed = TRUE)
})

test_that("depmicro_configure() reports the Python and the pydepmicro version", {
    skip_without_engine()
    info <- depmicro_configure()
    expect_true(file.exists(info$python))
    expect_match(info$pydepmicro_version, "^[0-9]+\\.[0-9]+")
    expect_identical(as.integer(info$api_version), 2L)
    expect_true(utils::compareVersion(info$numpy_version, "2") < 0)
    ## R's own BLAS is in the global symbol scope; torch must not bind to it
    expect_true(isTRUE(info$host_blas))
    expect_identical(info$torch_loaded, "deepbind")
})
