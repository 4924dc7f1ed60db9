-- Full copy: which chunk recorded a rejected value, so a chunk that is redone (after a crash or a
-- lost lease) replaces its records instead of adding them twice.
ALTER TABLE rejected_values
  ADD COLUMN chunk_no INT UNSIGNED NULL COMMENT 'full copy: the chunk of job_id that found the value',
  ADD KEY rejected_values_chunk (job_id, table_name, chunk_no);
