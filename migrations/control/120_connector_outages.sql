-- Times a connector of cdc.kafka.connect was seen not running, by a running sync or a gray/shim
-- step (src/cdc/connect.ts). Changes made during such a time reach Kafka only as the connector
-- catches up, which the topics cannot show: the sync_lag gate wants a clean verify begun after it.
CREATE TABLE IF NOT EXISTS cdc_connector_outages (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  connector VARCHAR(255) NOT NULL,
  problem TEXT NOT NULL,
  began_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'when it was first seen not running',
  ended_at DATETIME(6) NULL COMMENT 'when it was first seen running again; NULL while not',
  KEY connector_open (connector, ended_at),
  KEY by_end (ended_at)
) ENGINE=InnoDB;
