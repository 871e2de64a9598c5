"""Data-quality checks of batches, as Great Expectations suites shipped in ``quality/expectations/``.

``frames`` turns a staged batch and a merged result into small, typed frames; ``suites`` loads the
suite files; ``runner`` validates frames with GX (row-level suites chunk by chunk, aggregate suites
on one-row frames) and keeps the results as JSON, Data Docs HTML and warehouse rows.
"""
