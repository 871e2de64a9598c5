-- Each incoming id with the customer that owns it today, and whether its row can be resolved on
-- its own: none of the row's ids appears in another row, they belong to at most one customer,
-- that customer appears in no other row, and no new hard id contradicts one the customer holds.
-- Independent rows resolve here; the rest go through the union-find in row order.
-- The ids are looked up already (looked_up_ids.sql).
-- The text ids of the customers found, read by key (see resolved_single_ids.sql).
WITH known AS MATERIALIZED (
    SELECT customer_keys.customer_key, customer_keys.customer_id
    FROM customer_keys
    WHERE customer_keys.customer_key IN (SELECT customer_key FROM looked_up_ids)
),

looked_up AS (
    SELECT
        looked_up_ids.row_nr,
        looked_up_ids.id_type,
        looked_up_ids.id_value,
        known.customer_id AS existing_customer_id,
        looked_up_ids.customer_key AS existing_customer_key
    FROM looked_up_ids
    LEFT JOIN known USING (customer_key)
),

rows_per_id AS (
    -- A row names each id type once, so counting ids counts rows.
    SELECT id_type, id_value, count(*) AS row_count
    FROM looked_up
    GROUP BY id_type, id_value
),

rows_per_customer AS (
    SELECT existing_customer_id, count(DISTINCT row_nr) AS row_count
    FROM looked_up
    WHERE existing_customer_id IS NOT NULL
    GROUP BY existing_customer_id
),

row_owner AS (
    SELECT row_nr, max(existing_customer_id) AS owner,
        arg_max(existing_customer_key, existing_customer_id) AS owner_key
    FROM looked_up
    GROUP BY row_nr
),

hard_conflicts AS (
    SELECT DISTINCT new_id.row_nr
    FROM looked_up AS new_id
    JOIN row_owner USING (row_nr)
    JOIN id_keys AS held
        ON held.customer_key = row_owner.owner_key
        AND held.id_type = new_id.id_type
        AND held.id_value <> new_id.id_value
    WHERE new_id.existing_customer_id IS NULL
      AND list_contains($hard_types, new_id.id_type)
),

row_class AS (
    SELECT
        looked_up.row_nr,
        count(DISTINCT looked_up.existing_customer_id) <= 1
            AND max(rows_per_id.row_count) = 1
            AND coalesce(max(rows_per_customer.row_count), 1) = 1 AS unshared,
        max(looked_up.existing_customer_id) AS owner,
        -- Same as identity.new_customer_id of the row's smallest (id_type, id_value).
        md5(min(looked_up.id_type || chr(31) || looked_up.id_value)) AS derived_customer_id
    FROM looked_up
    JOIN rows_per_id USING (id_type, id_value)
    LEFT JOIN rows_per_customer USING (existing_customer_id)
    GROUP BY looked_up.row_nr
)

SELECT
    looked_up.row_nr,
    looked_up.id_type,
    looked_up.id_value,
    looked_up.existing_customer_id,
    looked_up.existing_customer_key,
    row_class.unshared AND hard_conflicts.row_nr IS NULL AS independent,
    coalesce(row_class.owner, row_class.derived_customer_id) AS customer_id
FROM looked_up
JOIN row_class USING (row_nr)
LEFT JOIN hard_conflicts USING (row_nr)
ORDER BY looked_up.row_nr
