-- Audited customers that no id resolves to.
SELECT count(*) AS orphans
FROM (SELECT DISTINCT customer_key FROM audit_incoming) AS audited
ANTI JOIN id_keys USING (customer_key)
