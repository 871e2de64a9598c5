-- Staged updates that the stored state does not dominate after the merge: each must be stored,
-- or lose to a stored value that is newer (or equal in time and greater in text). Audits the
-- customers in the sample hash(customer_id) % $modulus = 0 (all of them when $modulus is 1).
WITH audited AS (
    SELECT customer_id, property, value, update_ts
    FROM staged_properties
    WHERE hash(customer_id) % $modulus = 0
)

SELECT count(*) AS violations
FROM audited AS incoming
LEFT JOIN properties AS stored USING (customer_id, property)
WHERE stored.customer_id IS NULL
   OR coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
   OR (
       coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
       AND incoming.value > stored.value
   )
