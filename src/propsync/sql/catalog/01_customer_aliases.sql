-- Internal ids of customers merged away, pointing at the customer that absorbed them.
CREATE OR REPLACE VIEW customer_aliases AS
SELECT old_customer_id, customer_id, batch_id
FROM internal.customer_aliases
