-- A batch's previous record (a failed attempt, or a re-run), replaced by insert_batch.sql.
DELETE FROM batches
WHERE batch_id = $batch_id
