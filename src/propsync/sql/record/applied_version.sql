-- The version a batch was applied as, when it was (a batch id is applied at most once).
SELECT version
FROM batches
WHERE batch_id = $batch_id AND status = 'applied'
