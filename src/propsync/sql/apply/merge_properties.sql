-- Newer wins, per property. The incoming row replaces the stored one iff it is absent, or its
-- (update_ts, value) is greater: legacy (NULL) is older than any timestamp, and equal timestamps
-- are broken by the canonical JSON text so the result never depends on the order of batches.
MERGE INTO properties AS stored
USING staged_properties AS incoming
ON stored.customer_id = incoming.customer_id AND stored.property = incoming.property
WHEN MATCHED AND (
    coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
    OR (
        coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
        AND incoming.value > stored.value
    )
) THEN UPDATE SET
    value = incoming.value,
    update_ts = incoming.update_ts,
    batch_id = incoming.batch_id
WHEN NOT MATCHED THEN INSERT (customer_id, property, value, update_ts, batch_id)
    VALUES (incoming.customer_id, incoming.property, incoming.value, incoming.update_ts, incoming.batch_id)
