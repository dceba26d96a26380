-- Filtered job listings walk an index in page order instead of sorting every match.
CREATE INDEX jobs_state_created ON jobs (state, created_block, created_index);
CREATE INDEX jobs_renter_created ON jobs (renter, created_block, created_index);
CREATE INDEX jobs_provider_created ON jobs (provider, created_block, created_index);
CREATE INDEX prices_class ON prices (gpu_class, block_number, event_index);
