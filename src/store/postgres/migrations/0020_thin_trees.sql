-- projsync schema 20 on PostgreSQL: directory trees without their entries
-- (src/store/sqlite/migrations/0020_thin_trees.sql gives the reasons).
--
-- A directory's entries are rebuilt from the rows by ps_dir_entries, which runs the skip scan
-- of sqlite_trees.c server-side so that a directory costs one round trip, not one per entry:
-- from a cursor inside [prefix, the prefix's end), the next path of file_versions (one index
-- seek, visible or not); a direct child is an entry when a version of it is visible at `at`;
-- a deeper path names a subdirectory C, an entry when dir_trees has a row of prefix||C visible
-- at `at`, and the scan continues after everything under C (prefix||C||'0', '0' being '/'+1).
-- Each child (and each name the history ever held there) costs one index seek (a file whose
-- oldest version is the visible one) or two; the rows below a subdirectory, and superseded
-- versions, are never walked. Visibility is VISIBLE_AT's
-- (pg_internal.h). `prefix` is '' for the root, else the directory's path and '/'.

ALTER TABLE dir_trees DROP COLUMN entries;

CREATE FUNCTION ps_dir_entries(p_project bigint, p_at bigint, p_prefix bytea)
RETURNS TABLE (name bytea, mode bigint, sha bytea)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    plen integer := length(p_prefix);
    p_upper bytea;
    cur bytea := p_prefix;
    nxt bytea;
    rest bytea;
    slash integer;
    vis boolean;
BEGIN
    IF plen > 0 THEN
        p_upper := substring(p_prefix FROM 1 FOR plen - 1) || '\x30'::bytea;
    END IF;
    LOOP
        -- The next stored row, and whether it is the visible one: a path's first row (its
        -- oldest version) mostly is, which saves the second seek.
        IF p_upper IS NULL THEN
            SELECT fv.path, fv.mode, fv.sha, fv.introduced_by <= p_at
                   AND (fv.superseded_by IS NULL OR fv.superseded_by > p_at)
                   AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by
                               AND i.status = 'succeeded')
            INTO nxt, mode, sha, vis FROM file_versions fv
            WHERE fv.project_id = p_project AND fv.path >= cur
            ORDER BY fv.path, fv.introduced_by LIMIT 1;
        ELSE
            SELECT fv.path, fv.mode, fv.sha, fv.introduced_by <= p_at
                   AND (fv.superseded_by IS NULL OR fv.superseded_by > p_at)
                   AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by
                               AND i.status = 'succeeded')
            INTO nxt, mode, sha, vis FROM file_versions fv
            WHERE fv.project_id = p_project AND fv.path >= cur AND fv.path < p_upper
            ORDER BY fv.path, fv.introduced_by LIMIT 1;
        END IF;
        EXIT WHEN NOT FOUND;
        rest := substring(nxt FROM plen + 1);
        slash := position('\x2f'::bytea IN rest);
        IF slash = 0 AND vis THEN
            name := rest;
            RETURN NEXT;
            cur := nxt || '\x01'::bytea;
        ELSIF slash = 0 THEN
            SELECT fv.mode, fv.sha INTO mode, sha FROM file_versions fv
            WHERE fv.project_id = p_project AND fv.path = nxt
              AND fv.introduced_by <= p_at
              AND (fv.superseded_by IS NULL OR fv.superseded_by > p_at)
              AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by
                          AND i.status = 'succeeded')
            ORDER BY fv.introduced_by DESC LIMIT 1;
            IF FOUND THEN
                name := rest;
                RETURN NEXT;
            END IF;
            -- The next path after nxt: no path holds a NUL byte.
            cur := nxt || '\x01'::bytea;
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
        END IF;
    END LOOP;
END
$$;
