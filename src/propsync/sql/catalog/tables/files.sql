-- The version's files, oldest first (paths relative to the warehouse): the views read these.
CREATE TABLE internal.files (
    position      INTEGER NOT NULL,
    first_version BIGINT  NOT NULL,
    last_version  BIGINT  NOT NULL,
    changes       VARCHAR NOT NULL,
    history       VARCHAR NOT NULL,
    row_count     BIGINT  NOT NULL
)
