-- Which side a repair_queue entry is about. `verify --repair` copies legacy → MySQL, which is right
-- when MySQL missed a write. When the shim's second write to legacy failed (dual_mysql_primary, or
-- the step behind mysql_only), MySQL holds the newer row and legacy is behind: re-copying from legacy
-- would undo that write, so such entries are held, not repaired (membermig never writes to legacy).
ALTER TABLE repair_queue ADD COLUMN behind ENUM('mysql', 'legacy') NOT NULL DEFAULT 'mysql' COMMENT 'the side that missed the write';
UPDATE repair_queue SET behind = 'legacy' WHERE origin = 'shim' AND reason LIKE 'shim: legacy write failed%';
