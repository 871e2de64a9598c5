DELETE FROM run_properties
