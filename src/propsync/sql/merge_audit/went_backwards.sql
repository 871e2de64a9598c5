-- Published properties of touched customers (followed through merges) whose stored successor is
-- missing or older in the newer-wins order (sql/schema/17_newer_wins.sql) than what the previous
-- published version (attached as audit_published) showed.
WITH previous AS (
    SELECT
        coalesce(alias.customer_id, published.customer_id) AS customer_id,
        published.property,
        published.value,
        published.update_ts
    FROM audit_published.properties AS published
    LEFT JOIN customer_aliases AS alias ON alias.old_customer_id = published.customer_id
)

SELECT previous.customer_id, previous.property, previous.update_ts, current.update_ts
FROM previous
LEFT JOIN properties AS current USING (customer_id, property)
WHERE previous.customer_id IN (SELECT customer_id FROM audit_touched)
    AND (
        current.customer_id IS NULL
        OR newer_wins(previous.update_ts, previous.value, current.update_ts, current.value)
    )
ORDER BY 1, 2
