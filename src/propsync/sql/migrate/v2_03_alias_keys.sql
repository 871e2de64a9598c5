INSERT INTO alias_keys (old_customer_key, customer_key, batch_id)
SELECT merged.customer_key, survivor.customer_key, customer_aliases.batch_id
FROM customer_aliases
JOIN customer_keys AS merged ON merged.customer_id = customer_aliases.old_customer_id
JOIN customer_keys AS survivor ON survivor.customer_id = customer_aliases.customer_id
