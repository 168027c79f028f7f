-- projsync schema 14 on PostgreSQL. SQLite's code index gets its own trigram tokenizer in this
-- step (src/store/sqlite/migrations/0014_code_index_distinct.sql); pg_trgm already keeps each
-- distinct trigram of a value once, so the GIN index stays as it is.
--
-- The index copies learn the two non-ASCII letters that `-i` matches with ASCII ones (PCRE2's
-- caseless UTF matching, as git's): U+212A KELVIN SIGN matches k and U+017F LONG S matches s.
-- The copy (postgres/pg_code.c index_text) now holds them as k and s; before, `grep -i key`
-- missed a file holding "\u212Aey". The copies made before are mended the same way here (a
-- scan of every copy, once).

UPDATE code_blobs SET content = replace(replace(content, chr(8490), 'k'), chr(383), 's')
WHERE content IS NOT NULL AND (strpos(content, chr(8490)) > 0 OR strpos(content, chr(383)) > 0);
