-- The 64-bit hash an id is looked up by: the upper half of md5(id_type, chr(31), id_value), which
-- no DuckDB release changes (its own hash() may change between releases).
CREATE OR REPLACE MACRO id_hash(id_type, id_value) AS
    (md5_number(id_type || chr(31) || id_value) >> 64)::UBIGINT
