"""The ``archspec`` command line: a thin layer that calls the pipeline stages."""
