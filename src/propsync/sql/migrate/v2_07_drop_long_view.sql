DROP VIEW IF EXISTS customer_properties
