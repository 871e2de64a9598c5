SELECT property
FROM property_names
ORDER BY property
