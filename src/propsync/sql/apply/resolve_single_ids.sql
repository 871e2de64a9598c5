-- Fast path when every row carries exactly one id: no row can merge customers.
-- A new customer's internal id is derived from the id that created it, so re-runs agree.
SELECT
    batch_ids.row_nr,
    coalesce(customer_ids.customer_id, md5(batch_ids.id_type || chr(31) || batch_ids.id_value)) AS customer_id,
    customer_ids.customer_id IS NULL AS is_new
FROM batch_ids
LEFT JOIN customer_ids USING (id_type, id_value)
