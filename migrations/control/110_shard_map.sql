-- The shard map's routing (count, function, database pattern) the control store's jobs placed rows by,
-- recorded by the first command that uses the store (src/store/shard-map.ts). One row.
CREATE TABLE IF NOT EXISTS shard_map (
  id TINYINT NOT NULL PRIMARY KEY COMMENT 'always 1',
  shard_count INT NOT NULL,
  shard_function VARCHAR(16) NOT NULL,
  database_pattern VARCHAR(255) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  CONSTRAINT shard_map_one_row CHECK (id = 1)
) ENGINE=InnoDB;
