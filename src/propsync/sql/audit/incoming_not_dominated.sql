-- Audited updates that the stored state does not dominate after the merge: each must be stored,
-- or lose to a stored value that is newer (or equal in time and greater in text).
SELECT count(*) AS violations
FROM audit_incoming AS incoming
LEFT JOIN audit_stored AS stored USING (customer_key, property_id)
WHERE stored.customer_key IS NULL
   OR coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
   OR (
       coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
       AND incoming.value > stored.value
   )
