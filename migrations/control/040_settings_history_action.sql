-- What kind of change a settings_history row is, so `gray rollback` can walk back through the
-- sets it has not undone yet: set (an operator's change), rollback (gray rollback), mode (a
-- gray change made by `shim set` in the same transaction as the mode change).
ALTER TABLE settings_history ADD COLUMN action VARCHAR(16) NOT NULL DEFAULT 'set' AFTER kind;
