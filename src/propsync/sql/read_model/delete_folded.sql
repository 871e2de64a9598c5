-- The rows a fold slice (fold_slice.sql) just wrote into properties.
DELETE FROM recent_properties
WHERE seg IN (SELECT seg FROM recent_segments WHERE seg <= :through)
  AND customer_key BETWEEN :lo AND :hi
