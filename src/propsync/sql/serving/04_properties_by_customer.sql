-- Read index of the serving copies: a customer's properties (sql/read/customer_properties.sql).
CREATE INDEX IF NOT EXISTS properties_by_customer ON properties (customer_id)
