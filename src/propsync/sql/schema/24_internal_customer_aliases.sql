-- alias_keys is repointed at each merge (sql/apply/repoint_aliases.sql): no chain to follow.
CREATE OR REPLACE VIEW internal.customer_aliases AS
SELECT merged.customer_id AS old_customer_id, survivor.customer_id, alias_keys.batch_id,
    alias_keys.old_customer_key, alias_keys.customer_key
FROM alias_keys
JOIN customer_keys AS merged ON merged.customer_key = alias_keys.old_customer_key
JOIN customer_keys AS survivor ON survivor.customer_key = alias_keys.customer_key
