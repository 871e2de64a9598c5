-- Each incoming id with the key of the customer that holds it today (NULL: a new id). The hash
-- narrows id_keys to the rows of a few customers; the text comparison confirms them.
CREATE OR REPLACE TEMP TABLE looked_up_ids AS
WITH hashed AS (
    SELECT row_nr, id_type, id_value, id_hash(id_type, id_value) AS id_hash
    FROM batch_ids
),

candidates AS MATERIALIZED (
    SELECT hashed.row_nr, hashed.id_type, hashed.id_value, id_hashes.customer_key
    FROM hashed
    JOIN id_hashes USING (id_hash)
),

confirmed AS (
    SELECT candidates.row_nr, candidates.id_type, candidates.customer_key
    FROM candidates
    JOIN id_keys
        ON id_keys.customer_key = candidates.customer_key
        AND id_keys.id_type = candidates.id_type
        AND id_keys.id_value = candidates.id_value
)

SELECT batch_ids.row_nr, batch_ids.id_type, batch_ids.id_value, confirmed.customer_key
FROM batch_ids
LEFT JOIN confirmed USING (row_nr, id_type)
