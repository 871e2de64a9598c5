-- Properties of touched customers that no id resolves to.
SELECT count(*) AS orphans
FROM (SELECT DISTINCT customer_id FROM staged_properties) AS touched
ANTI JOIN customer_ids USING (customer_id)
