-- Great Expectations results of a batch (quality_rows, registered from one row per check).
INSERT INTO quality_results BY NAME
SELECT *
FROM quality_rows
