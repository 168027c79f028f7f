-- projsync schema 6: several nodes. Nothing changes on SQLite (one machine, one process per
-- sync, reaped by its process id); the step exists so that both backends count the same schema
-- versions (src/store/postgres/migrations/0006_nodes.sql adds the sync attempt and the nodes
-- table on PostgreSQL).
SELECT 1;
