DELETE FROM history_pending
