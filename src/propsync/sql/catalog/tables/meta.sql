-- version (the published version), generation (compactions of it), layout (the schema version).
CREATE TABLE internal.meta (
    key   VARCHAR NOT NULL,
    value VARCHAR
)
