-- Internal ids of customers merged away, pointing at the customer that absorbed them. A merge row
-- names the survivor of its batch; when that survivor was merged away later, follow the chain
-- (a customer is merged away at most once, so the chain ends).
CREATE VIEW customer_aliases AS
WITH RECURSIVE merges AS (
    SELECT value AS old_customer_id, customer_id, batch_id
    FROM internal.rows
    WHERE kind = 'merge'
),

chain (old_customer_id, customer_id, batch_id, depth) AS (
    SELECT old_customer_id, customer_id, batch_id, 0
    FROM merges
    UNION ALL
    SELECT chain.old_customer_id, merges.customer_id, chain.batch_id, chain.depth + 1
    FROM chain
    JOIN merges ON merges.old_customer_id = chain.customer_id
)

SELECT old_customer_id, customer_id, batch_id
FROM chain
QUALIFY row_number() OVER (PARTITION BY old_customer_id ORDER BY depth DESC) = 1
