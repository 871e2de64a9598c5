-- The customer each row resolved to (resolved_ids: the rows' customers, from
-- resolved_single_ids.sql or the union-find in identity.py), and whether the customer has several
-- rows in the batch: only those rows pay for collapsing duplicates (stage_batch_properties.sql).
CREATE OR REPLACE TEMP TABLE row_customers AS
WITH shared_customers AS (
    SELECT customer_id
    FROM resolved_ids
    GROUP BY customer_id
    HAVING count(*) > 1
)

SELECT
    resolved_ids.row_nr,
    resolved_ids.customer_id,
    shared_customers.customer_id IS NOT NULL AS shared
FROM resolved_ids
LEFT JOIN shared_customers USING (customer_id)
