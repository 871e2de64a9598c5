-- Each incoming id with the customer that owns it today (NULL when the id is new).
SELECT
    batch_ids.row_nr,
    batch_ids.id_type,
    batch_ids.id_value,
    customer_ids.customer_id AS existing_customer_id
FROM batch_ids
LEFT JOIN customer_ids USING (id_type, id_value)
ORDER BY batch_ids.row_nr
