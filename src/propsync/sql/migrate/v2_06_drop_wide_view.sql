-- Layout 1's views over the tables that layout 2 replaces by views of the same names.
DROP VIEW IF EXISTS customers_wide
