library(testthat)
library(depmicro)

test_check("depmicro")
