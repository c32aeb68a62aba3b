"""The comparison module: runs read back from MLflow -> one tidy frame -> `tunelab.analysis`.

`python -m tunelab.compare factorial ...` (see `--help`) prints the tables and logs them, with
plots, to a new MLflow run tagged `tunelab.kind=comparison`; `tunelab.compare.reports` does the
same from Python (a chain of stages calls it).
"""
