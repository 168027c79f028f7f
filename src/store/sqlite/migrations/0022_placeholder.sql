-- projsync schema 22: placeholder for the migration another branch adds (dropped at merge).
SELECT 1;
