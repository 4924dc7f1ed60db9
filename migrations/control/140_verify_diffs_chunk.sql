-- The verify chunk a difference was found in. A chunk redone after its verifier was killed drops
-- the rows its earlier attempt recorded, so a run lists only what its final attempts found (a
-- repaired or vanished difference of the dead attempt was listed beside a clean result).
ALTER TABLE verify_diffs ADD COLUMN chunk_no INT UNSIGNED NULL COMMENT 'the verify chunk it was found in (NULL: recorded before migration 140)';
ALTER TABLE verify_diffs ADD KEY verify_diffs_chunk (run_id, chunk_no);
