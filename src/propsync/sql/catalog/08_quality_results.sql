-- Great Expectations results per batch, stage and suite (written by the orchestration).
CREATE VIEW quality_results AS
SELECT unnest(result)
FROM (
    SELECT unnest(quality) AS result
    FROM internal.batch_records
)
