SELECT coalesce(max(customer_key), 0) FROM customers
