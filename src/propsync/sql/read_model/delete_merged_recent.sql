-- A merge: the merged-away customer's recent properties are gone too (delete_merged_properties).
DELETE FROM recent_properties
WHERE seg IN (SELECT seg FROM recent_segments)
  AND customer_key = ?1
