-- Each batch's newest record: a history row carries a batch's whole record (its counts, its
-- rejections, its quality results) as of the run that carried it.
CREATE VIEW internal.batch_records AS
SELECT *
FROM internal.history
QUALIFY row_number() OVER (PARTITION BY batch_id ORDER BY run_version DESC) = 1
