-- Each incoming id with the key of the customer that holds it today (NULL: a new id). The hash
-- narrows id_keys to the rows of a few customers; the text comparison confirms them (a hash
-- alone could be forged: md5 collisions can be made).
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

-- The ids the candidate customers hold, found by their key alone: probing id_keys on one integer
-- column and then the few rows found on the text costs a fraction of probing every row of id_keys
-- on all three (20k ids: 44 -> 22 ms at 1M customers, 133 -> 46 ms at 5M).
candidate_ids AS MATERIALIZED (
    SELECT id_keys.customer_key, id_keys.id_type, id_keys.id_value
    FROM id_keys
    SEMI JOIN candidates USING (customer_key)
),

confirmed AS (
    SELECT candidates.row_nr, candidates.id_type, candidates.customer_key
    FROM candidates
    JOIN candidate_ids
        ON candidate_ids.customer_key = candidates.customer_key
        AND candidate_ids.id_type = candidates.id_type
        AND candidate_ids.id_value = candidates.id_value
)

SELECT batch_ids.row_nr, batch_ids.id_type, batch_ids.id_value, confirmed.customer_key
FROM batch_ids
LEFT JOIN confirmed USING (row_nr, id_type)
