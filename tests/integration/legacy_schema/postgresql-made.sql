CREATE TABLE build (
	id VARCHAR NOT NULL, 
	project VARCHAR NOT NULL, 
	template VARCHAR, 
	status VARCHAR NOT NULL, 
	phase VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	limits JSON, 
	error_code VARCHAR, 
	error_message VARCHAR, 
	error_log_tail VARCHAR, 
	error_diagnostics JSON, 
	cancel_requested BOOLEAN NOT NULL, 
	attempts INTEGER NOT NULL, 
	heartbeat_at TIMESTAMP WITH TIME ZONE, 
	worker VARCHAR, 
	idempotency_key VARCHAR, 
	input_digest VARCHAR, 
	reused_from VARCHAR, 
	cache JSON, 
	PRIMARY KEY (id), 
	UNIQUE (idempotency_key)
);

CREATE INDEX ix_build_created_at ON build (created_at);

CREATE INDEX ix_build_status ON build (status);

CREATE INDEX ix_build_project ON build (project);

CREATE INDEX ix_build_input_digest ON build (input_digest);

CREATE TABLE generation (
	build_id VARCHAR NOT NULL, 
	prompt VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	template VARCHAR, 
	base_build VARCHAR, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	rounds JSON, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	files JSON, 
	deleted JSON, 
	PRIMARY KEY (build_id)
);
