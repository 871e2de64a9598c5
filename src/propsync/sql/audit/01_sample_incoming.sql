-- The staged updates the audits check: all of them ($modulus = 1), or for a large batch those of
-- the customers with hash(customer_id) % $modulus = 0, a deterministic sample. Materialised once
-- so the three audits read it instead of the whole staged batch.
CREATE OR REPLACE TEMP TABLE audit_incoming AS
SELECT customer_id, property, value, update_ts
FROM staged_properties
WHERE hash(customer_id) % $modulus = 0
