SELECT property, value, update_ts
FROM properties
WHERE customer_id = $customer_id
ORDER BY property
