-- The properties stored with a batch's id: each of its winners, unless a later batch beat it.
SELECT count(*) AS properties_stored
FROM properties
WHERE batch_id = $batch_id
