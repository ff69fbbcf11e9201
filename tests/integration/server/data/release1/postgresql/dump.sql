SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
SET default_tablespace = '';
SET default_table_access_method = heap;
CREATE TABLE api_token (
    id character varying(32) NOT NULL,
    user_id character varying(32) NOT NULL,
    secret_hash character varying(64) NOT NULL,
    label character varying(100) NOT NULL,
    created timestamp without time zone NOT NULL,
    last_used timestamp without time zone
);
CREATE TABLE applied_update (
    id character varying(100) NOT NULL,
    manager character varying(32) NOT NULL,
    applied timestamp without time zone NOT NULL
);
CREATE TABLE blob (
    sha256 character varying(64) NOT NULL,
    size bigint NOT NULL,
    created timestamp without time zone NOT NULL
);
CREATE TABLE job (
    id character varying(32) NOT NULL,
    name character varying(200) NOT NULL,
    job_type character varying(100) NOT NULL,
    status character varying(32) NOT NULL,
    status_reason text NOT NULL,
    priority integer NOT NULL,
    settings text NOT NULL,
    metadata text NOT NULL,
    project_id character varying(32) NOT NULL,
    manager_id character varying(32),
    user_id character varying(32),
    created timestamp without time zone NOT NULL,
    updated timestamp without time zone NOT NULL,
    start_paused boolean NOT NULL,
    worker_tag character varying(100),
    memory_mb integer,
    files_mode character varying(16) NOT NULL,
    blocked boolean NOT NULL,
    task_counts text NOT NULL,
    tasks_total integer NOT NULL,
    progress_points bigint NOT NULL
);
CREATE TABLE job_dependency (
    id integer NOT NULL,
    job_id character varying(32) NOT NULL,
    depends_on_id character varying(32) NOT NULL
);
CREATE SEQUENCE job_dependency_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE job_dependency_id_seq OWNED BY job_dependency.id;
CREATE TABLE job_file (
    id integer NOT NULL,
    job_id character varying(32) NOT NULL,
    relpath character varying(1024) NOT NULL,
    sha256 character varying(64) NOT NULL,
    size bigint NOT NULL
);
CREATE SEQUENCE job_file_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE job_file_id_seq OWNED BY job_file.id;
CREATE TABLE job_log_entry (
    id integer NOT NULL,
    job_id character varying(32) NOT NULL,
    created timestamp without time zone NOT NULL,
    who character varying(200) NOT NULL,
    what text NOT NULL,
    reason text NOT NULL
);
CREATE SEQUENCE job_log_entry_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE job_log_entry_id_seq OWNED BY job_log_entry.id;
CREATE TABLE job_output (
    id integer NOT NULL,
    job_id character varying(32) NOT NULL,
    relpath character varying(1024) NOT NULL,
    sha256 character varying(64) NOT NULL,
    size bigint NOT NULL,
    task character varying(48),
    created timestamp without time zone NOT NULL
);
CREATE SEQUENCE job_output_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE job_output_id_seq OWNED BY job_output.id;
CREATE TABLE log_request (
    task character varying(48) NOT NULL,
    job_id character varying(32) NOT NULL,
    manager character varying(32) NOT NULL,
    requested timestamp without time zone NOT NULL
);
CREATE TABLE manager (
    id character varying(32) NOT NULL,
    name character varying(100) NOT NULL,
    token_hash character varying(64) NOT NULL,
    url character varying(500) NOT NULL,
    variables text NOT NULL,
    nr_of_workers integer NOT NULL,
    worker_task_types text NOT NULL,
    version character varying(50),
    idle_workers integer NOT NULL,
    created timestamp without time zone NOT NULL,
    last_seen timestamp without time zone,
    last_startup timestamp without time zone,
    last_worker_report timestamp without time zone
);
CREATE TABLE project (
    id character varying(32) NOT NULL,
    name character varying(100) NOT NULL,
    description text NOT NULL,
    created timestamp without time zone NOT NULL
);
CREATE TABLE project_manager (
    id integer NOT NULL,
    project_id character varying(32) NOT NULL,
    manager_id character varying(32) NOT NULL
);
CREATE SEQUENCE project_manager_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE project_manager_id_seq OWNED BY project_manager.id;
CREATE TABLE project_member (
    id integer NOT NULL,
    project_id character varying(32) NOT NULL,
    user_id character varying(32) NOT NULL
);
CREATE SEQUENCE project_member_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE project_member_id_seq OWNED BY project_member.id;
CREATE TABLE task (
    id character varying(48) NOT NULL,
    job_id character varying(32) NOT NULL,
    name character varying(200) NOT NULL,
    task_type character varying(50) NOT NULL,
    status character varying(32) NOT NULL,
    priority integer NOT NULL,
    job_priority integer NOT NULL,
    commands text NOT NULL,
    parents text NOT NULL,
    worker character varying(200),
    failed_by_workers text NOT NULL,
    activity text NOT NULL,
    log_tail text NOT NULL,
    progress real NOT NULL,
    current_command_idx integer NOT NULL,
    command_progress real NOT NULL,
    metrics text,
    log_uploaded timestamp without time zone,
    created timestamp without time zone NOT NULL,
    updated timestamp without time zone NOT NULL
);
CREATE TABLE "user" (
    id character varying(32) NOT NULL,
    name character varying(100) NOT NULL,
    role character varying(16) NOT NULL,
    password_hash character varying(200),
    created timestamp without time zone NOT NULL
);
CREATE TABLE worker_record (
    id integer NOT NULL,
    manager_id character varying(32) NOT NULL,
    worker_id character varying(100) NOT NULL,
    nickname character varying(200) NOT NULL,
    status character varying(32) NOT NULL,
    platform character varying(20) NOT NULL,
    supported_task_types text NOT NULL,
    tags text NOT NULL,
    current_task character varying(48),
    current_job character varying(32),
    last_seen character varying(40),
    status_requested character varying(32),
    resources text,
    reported timestamp without time zone NOT NULL
);
CREATE SEQUENCE worker_record_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE worker_record_id_seq OWNED BY worker_record.id;
ALTER TABLE ONLY job_dependency ALTER COLUMN id SET DEFAULT nextval('job_dependency_id_seq'::regclass);
ALTER TABLE ONLY job_file ALTER COLUMN id SET DEFAULT nextval('job_file_id_seq'::regclass);
ALTER TABLE ONLY job_log_entry ALTER COLUMN id SET DEFAULT nextval('job_log_entry_id_seq'::regclass);
ALTER TABLE ONLY job_output ALTER COLUMN id SET DEFAULT nextval('job_output_id_seq'::regclass);
ALTER TABLE ONLY project_manager ALTER COLUMN id SET DEFAULT nextval('project_manager_id_seq'::regclass);
ALTER TABLE ONLY project_member ALTER COLUMN id SET DEFAULT nextval('project_member_id_seq'::regclass);
ALTER TABLE ONLY worker_record ALTER COLUMN id SET DEFAULT nextval('worker_record_id_seq'::regclass);
INSERT INTO api_token VALUES ('ba5cd9532275a6c0', '32871a1e39724c7ea6bdbe1a8583685a', '08c47c68ba018c3a2aae5d1a166029892fe19b2080d52fc0af7f3f4fd07da365', 'created', '2026-12-04 15:15:30.620626', NULL);
INSERT INTO api_token VALUES ('831e080d796a6f19', '59a0569b7bcf41bb88689bf3a55708aa', 'b2f48883be8596dee5ffb450ef2a256f1985fd245b93d83e254954cb8c17384a', 'created', '2026-12-04 15:15:30.671396', NULL);
INSERT INTO applied_update VALUES ('u1', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u2', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u3', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u4', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u5', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u6', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u7', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u8', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u9', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u10', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u11', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u12', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('u13', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.858548');
INSERT INTO applied_update VALUES ('c0', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.915381');
INSERT INTO applied_update VALUES ('c1', '7c5fb669001947409f3ededd576242ec', '2026-12-04 15:15:30.915381');
INSERT INTO job VALUES ('01a2419ff15a4a8ba51457b70f2359ec', 'canceled', 'sleep', 'canceled', 'wrong camera', 50, '{"frames":"1-2","chunk_size":1,"time_in_seconds":1.0}', '{}', '1c4abce849794cb0be7edcb981de8634', '7c5fb669001947409f3ededd576242ec', '59a0569b7bcf41bb88689bf3a55708aa', '2026-12-04 15:15:30.778912', '2026-12-04 15:15:30.911792', false, NULL, NULL, 'shared', false, '{"canceled":2}', 2, 0);
INSERT INTO job VALUES ('01a2419ff12f3ed4a1984c427ff3407d', 'done', 'sleep', 'completed', '', 50, '{"frames":"1-4","chunk_size":1,"time_in_seconds":1.0}', '{}', '1c4abce849794cb0be7edcb981de8634', '7c5fb669001947409f3ededd576242ec', '59a0569b7bcf41bb88689bf3a55708aa', '2026-12-04 15:15:30.735225', '2026-12-04 15:15:30.839061', false, NULL, NULL, 'shared', false, '{"completed":4}', 4, 400);
INSERT INTO job VALUES ('01a2419ff146978486e5e6bab43a011e', 'running', 'sleep', 'fail-requested', '1 of 3 tasks (33%) failed', 70, '{"frames":"1-6","chunk_size":2,"time_in_seconds":1.0}', '{}', '1c4abce849794cb0be7edcb981de8634', '7c5fb669001947409f3ededd576242ec', '59a0569b7bcf41bb88689bf3a55708aa', '2026-12-04 15:15:30.758972', '2026-12-04 15:15:30.891805', false, NULL, NULL, 'shared', false, '{"cancel-requested":1,"completed":1,"failed":1}', 3, 150);
INSERT INTO job_log_entry VALUES (1, '01a2419ff12f3ed4a1984c427ff3407d', '2026-12-04 15:15:30.735225', 'user ann', 'submitted sleep job with 4 tasks for manager m1', '');
INSERT INTO job_log_entry VALUES (2, '01a2419ff146978486e5e6bab43a011e', '2026-12-04 15:15:30.758972', 'user ann', 'submitted sleep job with 3 tasks for manager m1', '');
INSERT INTO job_log_entry VALUES (3, '01a2419ff15a4a8ba51457b70f2359ec', '2026-12-04 15:15:30.778912', 'user ann', 'submitted sleep job with 2 tasks for manager m1', '');
INSERT INTO job_log_entry VALUES (4, '01a2419ff12f3ed4a1984c427ff3407d', '2026-12-04 15:15:30.819984', 'manager m1', 'status queued -> active', '');
INSERT INTO job_log_entry VALUES (5, '01a2419ff12f3ed4a1984c427ff3407d', '2026-12-04 15:15:30.839704', 'manager m1', 'status active -> completed', '');
INSERT INTO job_log_entry VALUES (6, '01a2419ff146978486e5e6bab43a011e', '2026-12-04 15:15:30.844538', 'manager m1', 'status queued -> active', '');
INSERT INTO job_log_entry VALUES (7, '01a2419ff146978486e5e6bab43a011e', '2026-12-04 15:15:30.855626', 'manager m1', 'status active -> fail-requested', '1 of 3 tasks (33%) failed');
INSERT INTO job_log_entry VALUES (8, '01a2419ff15a4a8ba51457b70f2359ec', '2026-12-04 15:15:30.873935', 'user ann', 'status queued -> cancel-requested', 'wrong camera');
INSERT INTO job_log_entry VALUES (9, '01a2419ff146978486e5e6bab43a011e', '2026-12-04 15:15:30.892483', 'user boss', 'priority 50 -> 70', '');
INSERT INTO job_log_entry VALUES (10, '01a2419ff15a4a8ba51457b70f2359ec', '2026-12-04 15:15:30.912913', 'manager m1', 'status cancel-requested -> canceled', 'wrong camera');
INSERT INTO manager VALUES ('7c5fb669001947409f3ededd576242ec', 'm1', 'c8e865add1acdc9cf256f9bec78d85627673314d61124b20bff8001d739e8ccd', 'http://m1.local:8083', '{}', 2, '["blender-render","exec-command","file-management","sleep"]', NULL, 0, '2026-12-04 15:15:30.674002', '2026-12-04 15:15:30.721279', '2026-12-04 15:15:30.721279', NULL);
INSERT INTO project VALUES ('1c4abce849794cb0be7edcb981de8634', 'film', '', '2026-12-04 15:15:30.617521');
INSERT INTO project_manager VALUES (1, '1c4abce849794cb0be7edcb981de8634', '7c5fb669001947409f3ededd576242ec');
INSERT INTO project_member VALUES (1, '1c4abce849794cb0be7edcb981de8634', '59a0569b7bcf41bb88689bf3a55708aa');
INSERT INTO task VALUES ('01a2419ff12f3ed4a1984c427ff3407d-000001', '01a2419ff12f3ed4a1984c427ff3407d', 'sleep-2', 'sleep', 'completed', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 2)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', 'sleeping', 'frame 2: slept 1 s
Task 01a2419ff12f3ed4a1984c427ff3407d-000001 done', 100, 0, 0, NULL, NULL, '2026-12-04 15:15:30.735225', '2026-12-04 15:15:30.828276');
INSERT INTO task VALUES ('01a2419ff12f3ed4a1984c427ff3407d-000002', '01a2419ff12f3ed4a1984c427ff3407d', 'sleep-3', 'sleep', 'completed', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 3)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', 'sleeping', 'frame 3: slept 1 s
Task 01a2419ff12f3ed4a1984c427ff3407d-000002 done', 100, 0, 0, NULL, NULL, '2026-12-04 15:15:30.735225', '2026-12-04 15:15:30.833315');
INSERT INTO task VALUES ('01a2419ff12f3ed4a1984c427ff3407d-000003', '01a2419ff12f3ed4a1984c427ff3407d', 'sleep-4', 'sleep', 'completed', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 4)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', 'sleeping', 'frame 4: slept 1 s
Task 01a2419ff12f3ed4a1984c427ff3407d-000003 done', 100, 0, 0, NULL, NULL, '2026-12-04 15:15:30.735225', '2026-12-04 15:15:30.838393');
INSERT INTO task VALUES ('01a2419ff146978486e5e6bab43a011e-000001', '01a2419ff146978486e5e6bab43a011e', 'sleep-3-4', 'sleep', 'cancel-requested', 50, 70, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 3-4)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', 'sleeping 2/4', 'halfway', 50, 0, 0, NULL, NULL, '2026-12-04 15:15:30.758972', '2026-12-04 15:15:30.89117');
INSERT INTO task VALUES ('01a2419ff146978486e5e6bab43a011e-000000', '01a2419ff146978486e5e6bab43a011e', 'sleep-1-2', 'sleep', 'completed', 50, 70, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 1-2)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', '', 'slept twice', 100, 0, 0, NULL, NULL, '2026-12-04 15:15:30.758972', '2026-12-04 15:15:30.89117');
INSERT INTO task VALUES ('01a2419ff146978486e5e6bab43a011e-000002', '01a2419ff146978486e5e6bab43a011e', 'sleep-5-6', 'sleep', 'failed', 50, 70, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 5-6)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w2', '[{"id":"w2","identifier":"w2 (render-02)"}]', '', 'Error: something broke', 0, 0, 0, NULL, NULL, '2026-12-04 15:15:30.758972', '2026-12-04 15:15:30.89117');
INSERT INTO task VALUES ('01a2419ff15a4a8ba51457b70f2359ec-000000', '01a2419ff15a4a8ba51457b70f2359ec', 'sleep-1', 'sleep', 'canceled', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 1)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', NULL, '[]', '', '', 0, 0, 0, NULL, NULL, '2026-12-04 15:15:30.778912', '2026-12-04 15:15:30.908347');
INSERT INTO task VALUES ('01a2419ff15a4a8ba51457b70f2359ec-000001', '01a2419ff15a4a8ba51457b70f2359ec', 'sleep-2', 'sleep', 'canceled', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 2)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', NULL, '[]', '', '', 0, 0, 0, NULL, NULL, '2026-12-04 15:15:30.778912', '2026-12-04 15:15:30.911205');
INSERT INTO task VALUES ('01a2419ff12f3ed4a1984c427ff3407d-000000', '01a2419ff12f3ed4a1984c427ff3407d', 'sleep-1', 'sleep', 'completed', 50, 50, '[{"name":"echo","settings":{"message":"Preparing to sleep (frames 1)"}},{"name":"sleep","settings":{"time_in_seconds":1.0}}]', '[]', 'w1', '[]', 'sleeping', 'frame 1: slept 1 s
Task 01a2419ff12f3ed4a1984c427ff3407d-000000 done', 100, 0, 0, NULL, '2026-12-04 15:15:30.929868', '2026-12-04 15:15:30.735225', '2026-12-04 15:15:30.82314');
INSERT INTO "user" VALUES ('32871a1e39724c7ea6bdbe1a8583685a', 'boss', 'admin', NULL, '2026-12-04 15:15:30.619945');
INSERT INTO "user" VALUES ('59a0569b7bcf41bb88689bf3a55708aa', 'ann', 'artist', 'scrypt$16384$8$1$AG5esAxLSVZaKbLrySCoVw==$zZcvSLY5GXS2V8NFGFUsfpQvy57/2SyWMtcl0PZ5SzQ=', '2026-12-04 15:15:30.669432');
SELECT pg_catalog.setval('job_dependency_id_seq', 1, false);
SELECT pg_catalog.setval('job_file_id_seq', 1, false);
SELECT pg_catalog.setval('job_log_entry_id_seq', 10, true);
SELECT pg_catalog.setval('job_output_id_seq', 1, false);
SELECT pg_catalog.setval('project_manager_id_seq', 1, true);
SELECT pg_catalog.setval('project_member_id_seq', 1, true);
SELECT pg_catalog.setval('worker_record_id_seq', 1, false);
ALTER TABLE ONLY api_token
    ADD CONSTRAINT api_token_pkey PRIMARY KEY (id);
ALTER TABLE ONLY applied_update
    ADD CONSTRAINT applied_update_pkey PRIMARY KEY (id);
ALTER TABLE ONLY blob
    ADD CONSTRAINT blob_pkey PRIMARY KEY (sha256);
ALTER TABLE ONLY job_dependency
    ADD CONSTRAINT job_dependency_pkey PRIMARY KEY (id);
ALTER TABLE ONLY job_file
    ADD CONSTRAINT job_file_pkey PRIMARY KEY (id);
ALTER TABLE ONLY job_log_entry
    ADD CONSTRAINT job_log_entry_pkey PRIMARY KEY (id);
ALTER TABLE ONLY job_output
    ADD CONSTRAINT job_output_pkey PRIMARY KEY (id);
ALTER TABLE ONLY job
    ADD CONSTRAINT job_pkey PRIMARY KEY (id);
ALTER TABLE ONLY log_request
    ADD CONSTRAINT log_request_pkey PRIMARY KEY (task);
ALTER TABLE ONLY manager
    ADD CONSTRAINT manager_pkey PRIMARY KEY (id);
ALTER TABLE ONLY project_manager
    ADD CONSTRAINT project_manager_pkey PRIMARY KEY (id);
ALTER TABLE ONLY project_member
    ADD CONSTRAINT project_member_pkey PRIMARY KEY (id);
ALTER TABLE ONLY project
    ADD CONSTRAINT project_pkey PRIMARY KEY (id);
ALTER TABLE ONLY task
    ADD CONSTRAINT task_pkey PRIMARY KEY (id);
ALTER TABLE ONLY "user"
    ADD CONSTRAINT user_pkey PRIMARY KEY (id);
ALTER TABLE ONLY worker_record
    ADD CONSTRAINT worker_record_pkey PRIMARY KEY (id);
CREATE INDEX api_token_user_id ON api_token USING btree (user_id);
CREATE INDEX applied_update_applied ON applied_update USING btree (applied);
CREATE INDEX job_dependency_depends_on_id ON job_dependency USING btree (depends_on_id);
CREATE INDEX job_dependency_job_id ON job_dependency USING btree (job_id);
CREATE UNIQUE INDEX job_dependency_job_id_depends_on_id ON job_dependency USING btree (job_id, depends_on_id);
CREATE UNIQUE INDEX job_file_job_id_relpath ON job_file USING btree (job_id, relpath);
CREATE INDEX job_file_sha256 ON job_file USING btree (sha256);
CREATE INDEX job_log_entry_job_id ON job_log_entry USING btree (job_id);
CREATE INDEX job_manager_id ON job USING btree (manager_id);
CREATE INDEX job_manager_id_status ON job USING btree (manager_id, status);
CREATE UNIQUE INDEX job_output_job_id_relpath ON job_output USING btree (job_id, relpath);
CREATE INDEX job_output_sha256 ON job_output USING btree (sha256);
CREATE INDEX job_project_id ON job USING btree (project_id);
CREATE INDEX job_project_id_id ON job USING btree (project_id, id);
CREATE INDEX job_status_id ON job USING btree (status, id);
CREATE INDEX job_user_id ON job USING btree (user_id);
CREATE INDEX log_request_job_id ON log_request USING btree (job_id);
CREATE INDEX log_request_manager ON log_request USING btree (manager);
CREATE UNIQUE INDEX manager_name ON manager USING btree (name);
CREATE INDEX project_manager_manager_id ON project_manager USING btree (manager_id);
CREATE INDEX project_manager_project_id ON project_manager USING btree (project_id);
CREATE UNIQUE INDEX project_manager_project_id_manager_id ON project_manager USING btree (project_id, manager_id);
CREATE INDEX project_member_project_id ON project_member USING btree (project_id);
CREATE UNIQUE INDEX project_member_project_id_user_id ON project_member USING btree (project_id, user_id);
CREATE INDEX project_member_user_id ON project_member USING btree (user_id);
CREATE UNIQUE INDEX project_name ON project USING btree (name);
CREATE INDEX task_job_id_status ON task USING btree (job_id, status);
CREATE UNIQUE INDEX user_name ON "user" USING btree (name);
CREATE UNIQUE INDEX worker_record_manager_id_worker_id ON worker_record USING btree (manager_id, worker_id);
ALTER TABLE ONLY api_token
    ADD CONSTRAINT api_token_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE;
ALTER TABLE ONLY job_dependency
    ADD CONSTRAINT job_dependency_depends_on_id_fkey FOREIGN KEY (depends_on_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY job_dependency
    ADD CONSTRAINT job_dependency_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY job_file
    ADD CONSTRAINT job_file_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY job_log_entry
    ADD CONSTRAINT job_log_entry_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY job
    ADD CONSTRAINT job_manager_id_fkey FOREIGN KEY (manager_id) REFERENCES manager(id) ON DELETE SET NULL;
ALTER TABLE ONLY job_output
    ADD CONSTRAINT job_output_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY job
    ADD CONSTRAINT job_project_id_fkey FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE RESTRICT;
ALTER TABLE ONLY job
    ADD CONSTRAINT job_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE SET NULL;
ALTER TABLE ONLY log_request
    ADD CONSTRAINT log_request_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY project_manager
    ADD CONSTRAINT project_manager_manager_id_fkey FOREIGN KEY (manager_id) REFERENCES manager(id) ON DELETE CASCADE;
ALTER TABLE ONLY project_manager
    ADD CONSTRAINT project_manager_project_id_fkey FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE;
ALTER TABLE ONLY project_member
    ADD CONSTRAINT project_member_project_id_fkey FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE;
ALTER TABLE ONLY project_member
    ADD CONSTRAINT project_member_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE;
ALTER TABLE ONLY task
    ADD CONSTRAINT task_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;
ALTER TABLE ONLY worker_record
    ADD CONSTRAINT worker_record_manager_id_fkey FOREIGN KEY (manager_id) REFERENCES manager(id) ON DELETE CASCADE;
