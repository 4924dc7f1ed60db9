-- Direct CDC (cdc.mssql), two fixes.
-- 1. Its dead letters have no Kafka partition, and NULL never equals NULL in a unique key, so a page
--    replayed after a crash recorded its dead letters twice. -1 now stands for "no partition".
DELETE newer FROM dead_letters AS newer
  JOIN dead_letters AS older
    ON older.source = newer.source AND older.offset_no <=> newer.offset_no AND older.id < newer.id
 WHERE newer.partition_no IS NULL AND older.partition_no IS NULL;
UPDATE dead_letters SET partition_no = -1 WHERE partition_no IS NULL;
ALTER TABLE dead_letters MODIFY partition_no INT NOT NULL DEFAULT -1 COMMENT 'Kafka partition; -1 for direct CDC';

-- 2. The lag of an idle source: when a poll finds nothing new, the instance is caught up at that
--    moment, though its last change may be hours old. The gray gate's lag is now minus the later of
--    the two.
ALTER TABLE cdc_lsn_positions ADD COLUMN caught_up_at DATETIME(6) NULL COMMENT 'last poll that found nothing newer than the position';
