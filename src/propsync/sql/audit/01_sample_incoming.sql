-- The staged updates the audits check: all of them ($modulus = 1), or for a large batch those of
-- the customers with hash(customer_key) % $modulus = 0, a deterministic sample. Materialised once
-- so the three audits read it instead of the whole staged batch.
CREATE OR REPLACE TEMP TABLE audit_incoming AS
SELECT customer_key, property_id, value, update_ts
FROM staged_properties
WHERE hash(customer_key) % $modulus = 0
