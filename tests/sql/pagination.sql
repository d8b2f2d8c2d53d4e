-- The pagination helpers of every list: th_limit() (?limit=), th_cursor()
-- (?cursor=), th_query_uuid() (?patient_id= and the like) and th_page()
-- (items, next_cursor), and a list that uses them from one page to the
-- next.
BEGIN;
SELECT plan(20);

-- th_limit()
SELECT is(th_limit('{}'), 50, 'the default limit is 50');
SELECT is(th_limit('{"query": {"limit": "1"}}'), 1, 'limit 1');
SELECT is(th_limit('{"query": {"limit": "200"}}'), 200, 'limit 200');
SELECT throws_ok($$SELECT th_limit('{"query": {"limit": "0"}}')$$, 'TH422',
    '"limit" must be a number from 1 to 200.', 'limit 0 is refused');
SELECT throws_ok($$SELECT th_limit('{"query": {"limit": "201"}}')$$, 'TH422',
    '"limit" must be a number from 1 to 200.', 'limit 201 is refused');
SELECT throws_ok($$SELECT th_limit('{"query": {"limit": "ten"}}')$$, 'TH422',
    '"limit" must be a number from 1 to 200.', 'a limit that is no number is refused');

-- th_cursor()
SELECT is(th_cursor('{}'), NULL, 'no cursor: the first page');
SELECT is(th_cursor('{"query": {"cursor": "9A000000-0000-4000-8000-000000000001"}}'),
    '9a000000-0000-4000-8000-000000000001'::uuid, 'a cursor is an id');
SELECT throws_ok($$SELECT th_cursor('{"query": {"cursor": "nope"}}')$$, 'TH422',
    '"cursor" is not valid.', 'a cursor that is no id is refused');

-- th_query_uuid(): a list's filter by id (?patient_id=)
SELECT is(th_query_uuid('{}', 'patient_id'), NULL, 'no filter');
SELECT is(th_query_uuid('{"query": {"patient_id": "9A000000-0000-4000-8000-000000000001"}}',
    'patient_id'), '9a000000-0000-4000-8000-000000000001'::uuid, 'a filter by id');
SELECT throws_ok($$SELECT th_query_uuid('{"query": {"caregiver_id": "x"}}', 'caregiver_id')$$,
    'TH422', '"caregiver_id" is not a valid id.',
    'a filter that is no id is refused, naming its parameter');

-- th_page(): the rows of a query for limit + 1
SELECT is(th_page('[{"id": "a"}, {"id": "b"}, {"id": "c"}]', 2),
    '{"items": [{"id": "a"}, {"id": "b"}], "next_cursor": "b"}'::jsonb,
    'one row more than the limit: a page and the cursor of its last item');
SELECT is(th_page('[{"id": "a"}, {"id": "b"}]', 2),
    '{"items": [{"id": "a"}, {"id": "b"}], "next_cursor": null}'::jsonb,
    'no more rows: the last page');
SELECT is(th_page('[]', 2), '{"items": [], "next_cursor": null}'::jsonb,
    'no rows: an empty page');
SELECT is(th_page('[{"k": 1, "id": "a"}, {"k": 2, "id": "b"}]', 1, 'k'),
    '{"items": [{"k": 1, "id": "a"}], "next_cursor": "1"}'::jsonb,
    'the cursor may be another key');

-- GET /patients, three patients two at a time
INSERT INTO organisations (id, name)
    VALUES ('0a000000-0000-4000-8000-000000000001', 'Pages');
INSERT INTO staff (id, org_id, display_name, email, role)
    VALUES ('5a000000-0000-4000-8000-000000000001',
            '0a000000-0000-4000-8000-000000000001', 'Admin', 'admin@pages.test',
            'admin');
INSERT INTO patients (id, org_id, display_name, created_at) VALUES
    ('9a000000-0000-4000-8000-000000000003', '0a000000-0000-4000-8000-000000000001', 'First', now() - interval '3 minutes'),
    ('9a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'Second', now() - interval '2 minutes'),
    ('9a000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001', 'Third', now() - interval '1 minute');

CREATE TEMP TABLE page AS
    SELECT (th_op_patient_list('{"query": {"limit": "2"}}',
        ROW('5a000000-0000-4000-8000-000000000001',
            '0a000000-0000-4000-8000-000000000001', 'staff', 'admin')::th_caller)).body;
SELECT is((SELECT jsonb_path_query_array(body, '$.items[*].display_name') FROM page),
    '["First", "Second"]'::jsonb, 'the first page: the two oldest');
SELECT is((SELECT body ->> 'next_cursor' FROM page),
    '9a000000-0000-4000-8000-000000000001', 'its cursor: the last item''s id');

CREATE TEMP TABLE page2 AS
    SELECT (th_op_patient_list(jsonb_build_object('query', jsonb_build_object(
            'limit', '2', 'cursor', (SELECT body ->> 'next_cursor' FROM page))),
        ROW('5a000000-0000-4000-8000-000000000001',
            '0a000000-0000-4000-8000-000000000001', 'staff', 'admin')::th_caller)).body;
SELECT is((SELECT jsonb_path_query_array(body, '$.items[*].display_name') FROM page2),
    '["Third"]'::jsonb, 'the next page: the rest');
SELECT is((SELECT body -> 'next_cursor' FROM page2), 'null'::jsonb,
    'the last page has no cursor');

SELECT * FROM finish();
ROLLBACK;
