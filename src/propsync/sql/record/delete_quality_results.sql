-- A batch's previous results of one stage and suite, replaced by insert_quality_results.sql.
DELETE FROM quality_results
WHERE batch_id = $batch_id AND stage = $stage AND suite = $suite
