-- The cells whose row resolved to a customer and the names they use, for a spooled batch with
-- rows the union-find rejected (store/apply.py counts the other batches without a join).
SELECT count(*), coalesce(list(DISTINCT property ORDER BY property), [])
FROM batch_cells
SEMI JOIN row_customers USING (row_nr)
