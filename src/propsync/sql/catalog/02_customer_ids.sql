-- Every known customer id and the internal id of the customer that owns it now: an id keeps the
-- customer it was first seen with unless that customer was merged away. Two branches, so that a
-- filter on customer_id reaches the files' scan (and their sort) instead of a coalesce.
CREATE VIEW customer_ids AS
WITH ids AS (
    SELECT name AS id_type, value AS id_value, customer_id, batch_id
    FROM internal.rows
    WHERE kind = 'id'
),

own AS (
    SELECT ids.*
    FROM ids
    ANTI JOIN customer_aliases ON customer_aliases.old_customer_id = ids.customer_id
),

inherited AS (
    SELECT ids.id_type, ids.id_value, customer_aliases.customer_id, ids.batch_id
    FROM ids
    JOIN customer_aliases ON customer_aliases.old_customer_id = ids.customer_id
)

SELECT * FROM own
UNION ALL
SELECT * FROM inherited
