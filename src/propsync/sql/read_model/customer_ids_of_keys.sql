-- A merge's two customers by key to their internal ids (customer_ids and customer_aliases name
-- customers by id).
SELECT customer_key, customer_id
FROM customers
WHERE customer_key IN (?1, ?2)
