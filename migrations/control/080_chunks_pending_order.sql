-- Claiming the next pending chunks in chunk order. Without this index the claim walked the primary
-- key past every chunk already done: 0.2 s per claim at 300k done chunks of 400k, so a job over a
-- billion rows spent longer claiming than working. The claim names this index (FORCE INDEX):
-- the optimizer still preferred the primary key after ANALYZE.
ALTER TABLE chunks ADD KEY chunks_pending (job_id, state, table_name, chunk_no);
