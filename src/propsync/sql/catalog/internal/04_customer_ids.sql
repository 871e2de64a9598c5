-- Every known customer id and the customer that owns it now, by id and by key: an id keeps the
-- customer it was first seen with unless that customer was merged away. Two branches, so that a
-- filter on customer_id reaches the files' scan (and their sort) instead of a coalesce.
CREATE VIEW internal.customer_ids AS
WITH ids AS (
    SELECT name AS id_type, value AS id_value, customer_id, batch_id, customer_key
    FROM internal.rows
    WHERE kind = 'id'
),

own AS (
    SELECT ids.*
    FROM ids
    ANTI JOIN internal.customer_aliases AS aliases ON aliases.old_customer_id = ids.customer_id
),

inherited AS (
    SELECT ids.id_type, ids.id_value, aliases.customer_id, ids.batch_id, aliases.customer_key
    FROM ids
    JOIN internal.customer_aliases AS aliases ON aliases.old_customer_id = ids.customer_id
)

SELECT * FROM own
UNION ALL
SELECT * FROM inherited
