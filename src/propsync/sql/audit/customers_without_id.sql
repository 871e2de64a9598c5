-- Audited customers that no id resolves to.
SELECT count(*) AS customers_without_id
FROM (SELECT DISTINCT customer_key FROM audit_incoming) AS audited
ANTI JOIN id_keys USING (customer_key)
