-- One row per (customer, property), by key: its newest change, else its row in the base. Every
-- change won against the state it was committed on, so the newest change needs no timestamp
-- comparison. Customers merged away have none (the survivor's winners are among the changes).
CREATE VIEW internal.current_properties AS
WITH changed AS (
    SELECT customer_key, name AS property, value, update_ts, batch_id
    FROM internal.newest_changes
),

unchanged AS (
    SELECT base.customer_key, base.name AS property, base.value, base.update_ts, base.batch_id
    FROM internal.base_rows AS base
    ANTI JOIN changed ON changed.customer_key = base.customer_key AND changed.property = base.name
    WHERE base.kind = 'property'
),

merged_away AS (
    SELECT merged_key AS customer_key
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
ANTI JOIN merged_away USING (customer_key)
