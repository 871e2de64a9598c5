-- Every known customer id and the key of the customer that owns it now: an id keeps the customer
-- it was first seen with unless that customer was merged away. Two branches, so that a filter on
-- customer_key or id_value reaches the files' scan (and their sort) instead of a coalesce.
CREATE VIEW internal.customer_id_keys AS
WITH ids AS (
    SELECT name AS id_type, value AS id_value, customer_key, batch_id
    FROM internal.rows
    WHERE kind = 'id'
),

own AS (
    SELECT ids.*
    FROM ids
    ANTI JOIN internal.customer_alias_keys AS aliases ON aliases.old_customer_key = ids.customer_key
),

inherited AS (
    SELECT ids.id_type, ids.id_value, aliases.customer_key, ids.batch_id
    FROM ids
    JOIN internal.customer_alias_keys AS aliases ON aliases.old_customer_key = ids.customer_key
)

SELECT * FROM own
UNION ALL
SELECT * FROM inherited
