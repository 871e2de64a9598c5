"""What the Airflow DAGs in ``dags/`` call: staging, normalisation, checks, merge and publish.

The DAG files only wire tasks. Each task body calls one function of this package, so everything
that matters can be tested without a scheduler. Modules imported by DAG files at parse time
(``settings``, ``assets``) use the standard library and ``airflow.sdk`` only; everything heavy
(polars, duckdb, great_expectations) is imported by the task functions when they run.
"""
