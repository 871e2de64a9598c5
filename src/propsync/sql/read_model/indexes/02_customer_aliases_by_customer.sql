-- A merge repoints the aliases of the customer merged away.
CREATE INDEX IF NOT EXISTS customer_aliases_by_customer ON customer_aliases (customer_id)
