-- Control-store sessions run in UTC from this version on (src/store/control.ts, CONTROL_SESSION).
-- Before, the DATETIME columns that NOW(6) and column defaults fill held the server's local time:
-- on a server not on UTC, the rows written so far are moved to UTC here, by the server's offset
-- now (in a zone with daylight saving time, rows written under the other offset end an hour off).
-- Once only: control_utc_shift records the shift in the same transaction, and a rerun after a
-- crash before the ledger row finds it there and shifts by 0. schema_migrations is left as it is
-- (an init that creates a store writes its ledger in UTC before this runs; nothing reads it as a
-- time). Stop every membermig process (sync,
-- services' shims) before `init` applies it: an older one would go on writing local times.
CREATE TABLE IF NOT EXISTS control_utc_shift (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  seconds INT NOT NULL COMMENT 'the server''s offset from UTC that rows written before were moved by',
  shifted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
SET time_zone = @@global.time_zone;
SET @membermig_shift = IF((SELECT COUNT(*) FROM control_utc_shift) > 0, 0, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), NOW(6)));
SET time_zone = '+00:00';
START TRANSACTION;
UPDATE jobs SET created_at = created_at - INTERVAL @membermig_shift SECOND, updated_at = updated_at - INTERVAL @membermig_shift SECOND, finished_at = finished_at - INTERVAL @membermig_shift SECOND;
UPDATE chunks SET lease_until = lease_until - INTERVAL @membermig_shift SECOND, updated_at = updated_at - INTERVAL @membermig_shift SECOND;
UPDATE workers SET started_at = started_at - INTERVAL @membermig_shift SECOND, heartbeat_at = heartbeat_at - INTERVAL @membermig_shift SECOND;
UPDATE cdc_start_positions SET recorded_at = recorded_at - INTERVAL @membermig_shift SECOND;
UPDATE verify_runs SET started_at = started_at - INTERVAL @membermig_shift SECOND, finished_at = finished_at - INTERVAL @membermig_shift SECOND;
UPDATE verify_diffs SET detected_at = detected_at - INTERVAL @membermig_shift SECOND, repaired_at = repaired_at - INTERVAL @membermig_shift SECOND;
UPDATE repair_queue SET created_at = created_at - INTERVAL @membermig_shift SECOND, resolved_at = resolved_at - INTERVAL @membermig_shift SECOND;
UPDATE cdc_offsets SET updated_at = updated_at - INTERVAL @membermig_shift SECOND;
UPDATE dead_letters SET created_at = created_at - INTERVAL @membermig_shift SECOND, retried_at = retried_at - INTERVAL @membermig_shift SECOND, resolved_at = resolved_at - INTERVAL @membermig_shift SECOND;
UPDATE rejected_values SET created_at = created_at - INTERVAL @membermig_shift SECOND;
UPDATE settings SET updated_at = updated_at - INTERVAL @membermig_shift SECOND;
UPDATE settings_history SET changed_at = changed_at - INTERVAL @membermig_shift SECOND;
UPDATE cdc_parked SET parked_at = parked_at - INTERVAL @membermig_shift SECOND;
UPDATE cdc_lsn_positions SET updated_at = updated_at - INTERVAL @membermig_shift SECOND, caught_up_at = caught_up_at - INTERVAL @membermig_shift SECOND;
UPDATE shard_map SET recorded_at = recorded_at - INTERVAL @membermig_shift SECOND;
UPDATE cdc_connector_outages SET began_at = began_at - INTERVAL @membermig_shift SECOND, ended_at = ended_at - INTERVAL @membermig_shift SECOND;
INSERT IGNORE INTO control_utc_shift (id, seconds) VALUES (1, @membermig_shift);
COMMIT;
