-- A customer's ids (the GET body), an internal id as a reference, and a merge's repointing.
CREATE INDEX IF NOT EXISTS customer_ids_by_customer ON customer_ids (customer_id)
