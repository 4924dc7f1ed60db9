-- A dead letter an operator chose to skip (`sync skip-dead-letters`): who and why, kept with it.
-- Skipped ones are resolved (resolved_at set), so they no longer hold the gates; they stay listed.
ALTER TABLE dead_letters ADD COLUMN skipped_by VARCHAR(128) NULL COMMENT 'operator who skipped it (never applied)';
ALTER TABLE dead_letters ADD COLUMN skipped_reason VARCHAR(2048) NULL COMMENT 'why it was skipped';
