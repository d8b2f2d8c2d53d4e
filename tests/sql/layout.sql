-- The SQL layout (docs/sql.md): every function of the schema is defined
-- once in sql/functions/, and no other is left in the database (no
-- renamed old version, no older overload).  :'functions' is the list of
-- the names sql/functions/*.sql define, one per definition, in file order
-- (scripts/test.sh).
BEGIN;
SELECT plan(5);

CREATE TEMP VIEW defined AS
    SELECT name FROM unnest(string_to_array(:'functions', ',')) name;
-- the schema's own functions: not those of extensions (pgcrypto, pgTAP)
CREATE TEMP VIEW live AS
    SELECT p.proname::text AS name, p.oid
      FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                       WHERE d.classid = 'pg_proc'::regclass
                         AND d.objid = p.oid AND d.deptype = 'e');

SELECT cmp_ok((SELECT count(*) FROM defined)::int, '>', 100,
    'sql/functions/ defines the functions');
SELECT is_empty($$SELECT name FROM defined GROUP BY name HAVING count(*) > 1$$,
    'no function is defined twice in sql/functions/');
SELECT set_eq($$SELECT name FROM live$$, $$SELECT name FROM defined$$,
    'the database has exactly the functions of sql/functions/');
SELECT is_empty($$SELECT name FROM live GROUP BY name HAVING count(*) > 1$$,
    'no function has a second overload');
SELECT is_empty($$SELECT name FROM live
                  WHERE name ~ '(_v?[0-9]+|_old|_prev|_orig)$'$$,
    'no function name carries a version suffix');

SELECT * FROM finish();
ROLLBACK;
