SELECT property, property_key
FROM property_names
