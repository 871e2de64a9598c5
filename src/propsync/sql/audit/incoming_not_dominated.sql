-- Audited updates that the stored state does not dominate after the merge: each must be stored,
-- or lose to a stored value that is newer (or equal in time and greater in text).
SELECT count(*) AS violations
FROM audit_incoming AS incoming
LEFT JOIN audit_stored AS stored USING (customer_key, property_id)
WHERE stored.customer_key IS NULL
   OR newer_wins(incoming.update_ts, incoming.value, stored.update_ts, stored.value)
