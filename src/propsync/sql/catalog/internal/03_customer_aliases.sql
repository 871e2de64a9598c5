-- Customers merged away, pointing at the customer that absorbed them, by id and by key. A merge
-- row names the survivor of its batch; when that survivor was merged away later, follow the chain
-- (a customer is merged away at most once, so the chain ends).
CREATE VIEW internal.customer_aliases AS
WITH RECURSIVE merges AS (
    SELECT value AS old_customer_id, customer_id, batch_id, merged_key AS old_customer_key,
        customer_key
    FROM internal.rows
    WHERE kind = 'merge'
),

chain (old_customer_id, customer_id, batch_id, old_customer_key, customer_key, depth) AS (
    SELECT old_customer_id, customer_id, batch_id, old_customer_key, customer_key, 0
    FROM merges
    UNION ALL
    SELECT chain.old_customer_id, merges.customer_id, chain.batch_id, chain.old_customer_key,
        merges.customer_key, chain.depth + 1
    FROM chain
    JOIN merges ON merges.old_customer_id = chain.customer_id
)

SELECT old_customer_id, customer_id, batch_id, old_customer_key, customer_key
FROM chain
QUALIFY row_number() OVER (PARTITION BY old_customer_id ORDER BY depth DESC) = 1
