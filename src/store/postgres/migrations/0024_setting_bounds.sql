-- projsync schema 24: a project's max_blob_size is at most 256 MiB and keep_days at most 36500
-- (src/model/model.h says why), and the API and the CLI refuse more since this version. Values
-- stored before are brought within the bounds here, once, so that every reader (a sync, `cat`
-- deciding whether a file was too big or is still to be fetched, `project show`, a client that
-- reads a project and writes it back) sees a value the API accepts. Content stored under a
-- larger limit stays; a later version over 256 MiB is kept without content, as over any limit.
-- 36500 days is as good as no day limit.
UPDATE projects SET max_blob_size = 268435456 WHERE max_blob_size > 268435456;
UPDATE projects SET keep_days = 36500 WHERE keep_days > 36500;
