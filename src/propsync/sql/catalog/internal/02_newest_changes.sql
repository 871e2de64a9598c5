-- Each property's newest change, the whole row: internal.current_properties and a fold of changes
-- (sql/compaction/fold_changes.sql) start from it. A key's newest version, then its row: a max()
-- per key and a join, where a row_number() window took twice the CPU under the 768MB limit
-- (docs/benchmarks.md); keyed by the integer customer_key, not the 32-character customer_id
-- (docs/benchmarks.md, session 18). A version lists a key once, so the join finds one row.
CREATE VIEW internal.newest_changes AS
WITH newest_versions AS (
    SELECT customer_key, name, max(version) AS version
    FROM internal.change_rows
    WHERE kind = 'property'
    GROUP BY customer_key, name
)

SELECT changes.*
FROM internal.change_rows AS changes
SEMI JOIN newest_versions AS newest
    ON newest.customer_key = changes.customer_key
    AND newest.name = changes.name
    AND newest.version = changes.version
WHERE changes.kind = 'property'
