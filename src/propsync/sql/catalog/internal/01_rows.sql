-- Every row of the version's files: the base, then the changes since.
CREATE VIEW internal.rows AS
SELECT * FROM internal.base_rows
UNION ALL
SELECT * FROM internal.change_rows
