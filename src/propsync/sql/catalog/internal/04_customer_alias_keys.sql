-- Customers merged away, each pointing at the customer that absorbed it. A merge row names the
-- survivor of its batch; when that survivor was merged away later, follow the chain (a customer
-- is merged away at most once, so the chain ends).
CREATE VIEW internal.customer_alias_keys AS
WITH RECURSIVE merges AS (
    SELECT merged_key AS old_customer_key, customer_key, batch_id
    FROM internal.rows
    WHERE kind = 'merge'
),

chain (old_customer_key, customer_key, batch_id, depth) AS (
    SELECT old_customer_key, customer_key, batch_id, 0
    FROM merges
    UNION ALL
    SELECT chain.old_customer_key, merges.customer_key, chain.batch_id, chain.depth + 1
    FROM chain
    JOIN merges ON merges.old_customer_key = chain.customer_key
)

SELECT old_customer_key, customer_key, batch_id
FROM chain
QUALIFY row_number() OVER (PARTITION BY old_customer_key ORDER BY depth DESC) = 1
