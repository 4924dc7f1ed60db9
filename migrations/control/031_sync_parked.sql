-- sync: writes for a shard server that could not be reached, kept in log order until it is back.
-- Parking them (instead of waiting) lets the offsets move on and the other servers keep up; while
-- a server has parked writes, every later write for it is parked behind them, so per-key order holds.
CREATE TABLE IF NOT EXISTS cdc_parked (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  server VARCHAR(64) NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  shard INT UNSIGNED NOT NULL,
  op VARCHAR(8) NOT NULL COMMENT 'upsert | delete',
  data LONGTEXT NOT NULL COMMENT 'JSON: the row (upsert) or key (delete) values, bytes as {"$b": base64}',
  origin JSON NULL COMMENT 'topic/partition/offset of the event it came from, for a dead letter',
  parked_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY cdc_parked_server (server, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
