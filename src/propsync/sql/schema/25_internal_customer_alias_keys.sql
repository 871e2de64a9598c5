-- alias_keys is repointed at each merge (sql/apply/repoint_aliases.sql): no chain to follow.
CREATE OR REPLACE VIEW internal.customer_alias_keys AS
SELECT old_customer_key, customer_key, batch_id
FROM alias_keys
