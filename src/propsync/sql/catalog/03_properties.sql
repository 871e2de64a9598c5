-- One row per (customer, property): its newest change, else its row in the base. Every change
-- won against the state it was committed on, so the newest change needs no timestamp comparison.
CREATE VIEW properties AS
WITH newest_versions AS (
    -- A key's newest version, then its row (sql/compaction/fold_changes.sql says why).
    SELECT customer_id, name, max(version) AS version
    FROM internal.change_rows
    WHERE kind = 'property'
    GROUP BY customer_id, name
),

changed AS (
    SELECT changes.customer_id, changes.name AS property, changes.value, changes.update_ts,
        changes.batch_id
    FROM internal.change_rows AS changes
    SEMI JOIN newest_versions AS newest
        ON newest.customer_id = changes.customer_id
        AND newest.name = changes.name
        AND newest.version = changes.version
    WHERE changes.kind = 'property'
),

unchanged AS (
    SELECT base.customer_id, base.name AS property, base.value, base.update_ts, base.batch_id
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
