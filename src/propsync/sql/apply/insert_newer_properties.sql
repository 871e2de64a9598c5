-- Newer wins, step 2 of 2: every incoming property whose key is not stored (after step 1 deleted
-- the ones it beats) is inserted; a stored property that is newer keeps its place. Returns the
-- number inserted, which is the number of updates applied. Staged keys are unique (staging
-- deduplicates), so this cannot insert a key twice.
MERGE INTO properties AS stored
USING staged_properties AS incoming
ON stored.customer_id = incoming.customer_id AND stored.property = incoming.property
WHEN NOT MATCHED THEN INSERT (customer_id, property, value, update_ts, batch_id)
    VALUES (incoming.customer_id, incoming.property, incoming.value, incoming.update_ts, incoming.batch_id)
