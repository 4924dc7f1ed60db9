-- Why a difference cannot be repaired: kind 'unrepresentable' is a legacy row holding a value the
-- target cannot hold (rows.on_unrepresentable). Such a row exists, so its copies are never deleted.
ALTER TABLE verify_diffs ADD COLUMN reason VARCHAR(2048) NULL COMMENT 'unrepresentable: which value and why';
ALTER TABLE verify_diffs MODIFY COLUMN kind VARCHAR(16) NOT NULL COMMENT 'missing | extra | different | wrong_shard | unrepresentable';
ALTER TABLE verify_diffs MODIFY COLUMN repair_action VARCHAR(32) NULL COMMENT 'upsert | delete | move | hold | keep';
