-- The build's rows of customers (published_customers.sql).
INSERT INTO customers (customer_key, customer_id) VALUES (?1, ?2)
