-- Least privilege in Postgres for docker-compose.yml (development credentials only): run once by
-- the postgres image when it initialises an empty data volume (/docker-entrypoint-initdb.d), as
-- POSTGRES_USER `formflow`, a superuser that owns the schemas and runs the *-migrate containers.
-- Per service it creates the app role `formflow_<schema>` (NOLOGIN, owns nothing; the service's
-- migrations grant it its own schema's tables) and the login role of the service's container,
-- `formflow_<schema>_pod`, a member of that app role and of nothing else: the role a Kubernetes
-- pod gets from `postgres.podSecret` (docs/deploy.md, "1. Postgres").
--
-- Idempotent, so a data volume created before this file existed can be brought up to date:
--   docker compose exec -T postgres psql -U formflow -d formflow < deploy/compose/postgres-init.sql
DO $$
DECLARE
  schema_name text;
BEGIN
  FOREACH schema_name IN ARRAY ARRAY['tenant', 'auth', 'forms', 'workflow', 'notify', 'ai'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'formflow_' || schema_name) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', 'formflow_' || schema_name);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'formflow_' || schema_name || '_pod') THEN
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I',
                     'formflow_' || schema_name || '_pod', 'formflow', 'formflow_' || schema_name);
    END IF;
  END LOOP;
END
$$;
