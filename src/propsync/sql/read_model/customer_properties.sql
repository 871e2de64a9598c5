-- A customer's properties, sorted as sql/read/customer_properties.sql sorts them.
SELECT property, value, update_ts FROM properties WHERE customer_id = :customer_id
ORDER BY property
