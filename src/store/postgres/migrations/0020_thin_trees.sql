-- projsync schema 20 on PostgreSQL: directory trees without their entries
-- (src/store/sqlite/migrations/0020_thin_trees.sql gives the reasons).
--
-- A directory's entries are rebuilt from the rows by ps_dir_entries, which runs the skip scan
-- of sqlite_trees.c server-side so that a directory costs one round trip, not one per entry:
-- from a cursor in [prefix, the prefix's end), the rows of file_versions in index order, each
-- with whether it is visible at `at`; a direct child's visible version is a file entry; a
-- deeper path names a subdirectory C, an entry when dir_trees has a row of prefix||C visible
-- at `at`, and the scan seeks again after everything under C (prefix||C||'0', '0' being
-- '/'+1). A directory costs a range read of its own files' rows plus one seek per
-- subdirectory it has or ever had; a subdirectory's rows are never read. Visibility is
-- VISIBLE_AT's (pg_internal.h). `prefix` is '' for the root, else the directory's path and '/'.

-- DROP COLUMN only marks the column dropped, at once: rows written before keep the bytes until
-- they are rewritten (VACUUM FULL dir_trees gives the space back now); new rows are small.
ALTER TABLE dir_trees DROP COLUMN entries;

CREATE FUNCTION ps_dir_entries(p_project bigint, p_at bigint, p_prefix bytea)
RETURNS TABLE (name bytea, mode bigint, sha bytea)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    plen integer := length(p_prefix);
    p_upper bytea;
    cur bytea := p_prefix;
    c refcursor;
    r record;
    rest bytea;
    slash integer;
    skipped boolean;
BEGIN
    IF plen > 0 THEN
        p_upper := substring(p_prefix FROM 1 FOR plen - 1) || '\x30'::bytea;
    END IF;
    LOOP
        skipped := false;
        -- Two queries so that the end of the range bounds the index scan; the loop leaves
        -- its query at the first subdirectory.
        IF p_upper IS NULL THEN
            OPEN c FOR SELECT fv.path, fv.mode, fv.sha, fv.introduced_by <= p_at
                          AND (fv.superseded_by IS NULL OR fv.superseded_by > p_at)
                          AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by
                                      AND i.status = 'succeeded') AS vis
                   FROM file_versions fv
                   WHERE fv.project_id = p_project AND fv.path >= cur
                   ORDER BY fv.path, fv.introduced_by;
        ELSE
            OPEN c FOR SELECT fv.path, fv.mode, fv.sha, fv.introduced_by <= p_at
                          AND (fv.superseded_by IS NULL OR fv.superseded_by > p_at)
                          AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by
                                      AND i.status = 'succeeded') AS vis
                   FROM file_versions fv
                   WHERE fv.project_id = p_project AND fv.path >= cur AND fv.path < p_upper
                   ORDER BY fv.path, fv.introduced_by;
        END IF;
        LOOP
            FETCH c INTO r;
            EXIT WHEN NOT FOUND;
            rest := substring(r.path FROM plen + 1);
            slash := position('\x2f'::bytea IN rest);
            IF slash = 0 THEN
                IF r.vis THEN
                    name := rest;
                    mode := r.mode;
                    sha := r.sha;
                    RETURN NEXT;
                END IF;
            ELSE
                name := substring(rest FROM 1 FOR slash - 1);
                SELECT dt.tree_sha INTO sha FROM dir_trees dt
                WHERE dt.project_id = p_project AND dt.path = p_prefix || name
                  AND dt.introduced_by <= p_at
                  AND (dt.superseded_by IS NULL OR dt.superseded_by > p_at)
                  AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = dt.introduced_by
                              AND i.status = 'succeeded')
                ORDER BY dt.introduced_by DESC LIMIT 1;
                IF FOUND THEN
                    mode := 16384;  -- 040000, a tree
                    RETURN NEXT;
                END IF;
                cur := p_prefix || name || '\x30'::bytea;
                skipped := true;
                EXIT;
            END IF;
        END LOOP;
        CLOSE c;
        EXIT WHEN NOT skipped;
    END LOOP;
END
$$;
