-- Internal ids of customers merged away, pointing at the customer that absorbed them (the files
-- name customers by key: sql/catalog/internal/).
CREATE VIEW customer_aliases AS
SELECT merged.customer_id AS old_customer_id, survivor.customer_id, aliases.batch_id
FROM internal.customer_alias_keys AS aliases
JOIN internal.customer_names AS merged ON merged.customer_key = aliases.old_customer_key
JOIN internal.customer_names AS survivor ON survivor.customer_key = aliases.customer_key
