-- A merge: the merged-away customer's properties are gone (the run lists the survivor's winners).
DELETE FROM properties
WHERE customer_key = (SELECT customer_key FROM customers WHERE customer_id = ?2)
