-- Audited customers that no id resolves to.
SELECT count(*) AS orphans
FROM (SELECT DISTINCT customer_id FROM audit_incoming) AS audited
ANTI JOIN customer_ids USING (customer_id)
