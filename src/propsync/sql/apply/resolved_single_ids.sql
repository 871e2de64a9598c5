-- Fast path when every row carries exactly one id: no row can merge customers.
-- A new customer's internal id is derived from the id that created it, so re-runs agree; its key
-- is drawn when the batch stores it (batch_customers.sql).
-- The ids are looked up already (looked_up_ids.sql); row_customers.sql, new_ids.sql and
-- known_customers.sql read this table, so a batch of any size stays in DuckDB (which spills).
-- The text ids of the customers found, read by key: a LEFT JOIN of the rows with customer_keys
-- would hash the whole table (104-179 ms at 1M customers, against 30 ms for this semi join).
CREATE OR REPLACE TEMP TABLE resolved_ids AS
WITH known AS MATERIALIZED (
    SELECT customer_keys.customer_key, customer_keys.customer_id
    FROM customer_keys
    WHERE customer_keys.customer_key IN (SELECT customer_key FROM looked_up_ids)
)

SELECT
    looked_up_ids.row_nr,
    looked_up_ids.id_type,
    looked_up_ids.id_value,
    coalesce(known.customer_id, md5(looked_up_ids.id_type || chr(31) || looked_up_ids.id_value)) AS customer_id,
    looked_up_ids.customer_key,
    looked_up_ids.customer_key IS NULL AS is_new
FROM looked_up_ids
LEFT JOIN known USING (customer_key)
