CREATE TABLE build (
	id VARCHAR NOT NULL, 
	project VARCHAR NOT NULL, 
	template VARCHAR, 
	status VARCHAR NOT NULL, 
	phase VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	limits JSON, 
	error_code VARCHAR, 
	error_message VARCHAR, 
	error_log_tail VARCHAR, 
	cancel_requested BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_build_created_at ON build (created_at);

CREATE INDEX ix_build_status ON build (status);

CREATE INDEX ix_build_project ON build (project);

CREATE TABLE generation (
	build_id VARCHAR NOT NULL, 
	prompt VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	template VARCHAR, 
	base_build VARCHAR, 
	created_at DATETIME NOT NULL, 
	rounds JSON, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	files JSON, 
	deleted JSON, 
	PRIMARY KEY (build_id)
);

ALTER TABLE "build" ADD COLUMN "error_diagnostics" JSON;

ALTER TABLE "build" ADD COLUMN "attempts" INTEGER DEFAULT 0;

ALTER TABLE "build" ADD COLUMN "heartbeat_at" DATETIME;

ALTER TABLE "build" ADD COLUMN "worker" VARCHAR;

ALTER TABLE "build" ADD COLUMN "idempotency_key" VARCHAR;

ALTER TABLE "build" ADD COLUMN "input_digest" VARCHAR;

ALTER TABLE "build" ADD COLUMN "reused_from" VARCHAR;

ALTER TABLE "build" ADD COLUMN "cache" JSON;
