-- Every batch the apply path has seen, applied or failed, with its counts: its newest record.
CREATE VIEW batches AS
SELECT unnest(batch)
FROM internal.batch_records
WHERE batch IS NOT NULL
