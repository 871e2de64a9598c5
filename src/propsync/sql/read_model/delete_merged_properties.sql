-- A merge: the merged-away customer's properties are gone (the run lists the survivor's winners).
DELETE FROM properties
WHERE customer_key = ?1
