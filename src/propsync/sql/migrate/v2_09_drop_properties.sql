DROP TABLE properties
