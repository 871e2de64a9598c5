-- One row per (customer, property), by id and by key: its newest change, else its row in the base.
-- Every change won against the state it was committed on, so the newest change needs no timestamp
-- comparison. The base's rows are matched to the changes by customer_id, so that a filter on it
-- reaches both sides' scans.
CREATE VIEW internal.current_properties AS
WITH changed AS (
    SELECT customer_id, name AS property, value, update_ts, batch_id, customer_key
    FROM internal.newest_changes
),

unchanged AS (
    SELECT base.customer_id, base.name AS property, base.value, base.update_ts, base.batch_id,
        base.customer_key
    FROM internal.base_rows AS base
    ANTI JOIN changed ON changed.customer_id = base.customer_id AND changed.property = base.name
    WHERE base.kind = 'property'
),

merged_away AS (
    SELECT value AS customer_id
    FROM internal.rows
    WHERE kind = 'merge'
),

current AS (
    SELECT * FROM unchanged
    UNION ALL
    SELECT * FROM changed
)

SELECT current.*
FROM current
ANTI JOIN merged_away USING (customer_id)
