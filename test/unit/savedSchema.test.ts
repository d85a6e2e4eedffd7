import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { checkSavedSchema, SavedSchemaProblem } from '../../activities/clickhouse/savedSchema';

// SHOW CREATE TABLE output, as the servers printed it (18.16.1 from Debian; 26.9 from chdb-core).
const V18 = {
  events:
    "CREATE TABLE analytics.events ( event_date Date,  user_id UInt64,  s String DEFAULT 'a;b',  `weird name` String) ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id) SETTINGS index_granularity = 8192",
  legacy: 'CREATE TABLE analytics.legacy ( d Date,  id UInt64) ENGINE = MergeTree(d, id, 8192)',
  sampled: 'CREATE TABLE analytics.sampled ( d Date,  id UInt64) ENGINE = MergeTree(d, intHash32(id), (d, intHash32(id)), 8192)',
  collapsing: 'CREATE TABLE analytics.coll ( d Date,  id UInt64,  sign Int8) ENGINE = CollapsingMergeTree(d, id, 8192, sign)',
  replacing: 'CREATE TABLE analytics.repl ( d Date,  id UInt64,  v UInt64) ENGINE = ReplacingMergeTree(v) PARTITION BY toYYYYMM(d) ORDER BY id SETTINGS index_granularity = 8192',
  summing: 'CREATE TABLE analytics.summ ( d Date,  id UInt64,  v UInt64) ENGINE = SummingMergeTree PARTITION BY toYYYYMM(d) ORDER BY id SAMPLE BY id SETTINGS index_granularity = 8192',
  url: "CREATE TABLE analytics.urlt ( id UInt64) ENGINE = URL('http://127.0.0.1:1/x', CSV)",
  file: 'CREATE TABLE analytics.filet ( id UInt64) ENGINE = File(CSV)',
  memory: 'CREATE TABLE analytics.mem ( id UInt64) ENGINE = Memory',
  view: 'CREATE VIEW analytics.v ( id UInt64) AS SELECT id FROM analytics.mem ',
  materialized:
    'CREATE MATERIALIZED VIEW analytics.mv ( id UInt64) ENGINE = MergeTree ORDER BY id SETTINGS index_granularity = 8192 AS SELECT id FROM analytics.mem ',
};
const V26 = {
  events:
    'CREATE TABLE analytics.events\n(\n    `event_date` Date,\n    `event_time` DateTime,\n    `user_id` UInt64,\n    `event_type` String,\n    `amount` Float64\n)\nENGINE = MergeTree\nPARTITION BY toYYYYMM(event_date)\nORDER BY (event_date, user_id)\nSETTINGS index_granularity = 8192\n',
  legacy: 'CREATE TABLE analytics.legacy\n(\n    `d` Date,\n    `id` UInt64\n)\nENGINE = MergeTree(d, id, 8192)\n',
  // Projection, skip index, codec, TTL, several settings and a comment.
  replacing:
    "CREATE TABLE analytics.repl\n(\n    `d` Date,\n    `id` UInt64,\n    `v` UInt64,\n    `weird name` String DEFAULT 'x',\n    `s` String CODEC(ZSTD(3)),\n    INDEX ix s TYPE bloom_filter GRANULARITY 4,\n    PROJECTION p\n    (\n        SELECT\n            id,\n            sum(v)\n        GROUP BY id\n    )\n)\nENGINE = ReplacingMergeTree(v)\nPARTITION BY toYYYYMM(d)\nORDER BY id\nTTL d + toIntervalYear(1)\nSETTINGS index_granularity = 4096, deduplicate_merge_projection_mode = 'drop'\nCOMMENT 'the table'\n",
  url: "CREATE TABLE analytics.urlt\n(\n    `id` UInt64\n)\nENGINE = URL('http://127.0.0.1:1/x', 'CSV')\n",
  memory: 'CREATE TABLE analytics.mem\n(\n    `id` UInt64\n)\nENGINE = Memory\n',
  view: 'CREATE VIEW analytics.v\n(\n    `id` UInt64\n)\nAS SELECT id\nFROM analytics.repl\n',
};
const replicated =
  "CREATE TABLE analytics.events\n(\n    `d` Date,\n    `id` UInt64\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events', '{replica}')\nPARTITION BY toYYYYMM(d)\nORDER BY id\nSETTINGS index_granularity = 8192\n";

const refusal = (statement: string, database: string, table: string): string => {
  try {
    checkSavedSchema(statement, database, table);
  } catch (err) {
    assert.ok(err instanceof SavedSchemaProblem, String(err));
    return err.message;
  }
  assert.fail(`accepted: ${statement}`);
};

describe('saved ClickHouse schema check', () => {
  it('accepts what 18.16 prints for MergeTree-family tables, the deprecated MergeTree(date, key, 8192) syntax included', () => {
    assert.deepEqual(checkSavedSchema(V18.events, 'analytics', 'events'), { engine: 'MergeTree' });
    assert.deepEqual(checkSavedSchema(V18.legacy, 'analytics', 'legacy'), { engine: 'MergeTree' });
    assert.deepEqual(checkSavedSchema(V18.sampled, 'analytics', 'sampled'), { engine: 'MergeTree' });
    assert.deepEqual(checkSavedSchema(V18.collapsing, 'analytics', 'coll'), { engine: 'CollapsingMergeTree' });
    assert.deepEqual(checkSavedSchema(V18.replacing, 'analytics', 'repl'), { engine: 'ReplacingMergeTree' });
    assert.deepEqual(checkSavedSchema(V18.summing, 'analytics', 'summ'), { engine: 'SummingMergeTree' });
  });

  it('accepts what current releases print: quoted columns, projections, indexes, TTL, settings, comment, Replicated*', () => {
    assert.deepEqual(checkSavedSchema(V26.events, 'analytics', 'events'), { engine: 'MergeTree' });
    assert.deepEqual(checkSavedSchema(V26.legacy, 'analytics', 'legacy'), { engine: 'MergeTree' });
    assert.deepEqual(checkSavedSchema(V26.replacing, 'analytics', 'repl'), { engine: 'ReplacingMergeTree' });
    assert.deepEqual(checkSavedSchema(replicated, 'analytics', 'events'), { engine: 'ReplicatedReplacingMergeTree' });
    assert.deepEqual(checkSavedSchema('CREATE TABLE `my db`."ta""ble" (x UInt8) ENGINE = VersionedCollapsingMergeTree(s, v) ORDER BY x', 'my db', 'ta"ble'), {
      engine: 'VersionedCollapsingMergeTree',
    });
    assert.deepEqual(checkSavedSchema("CREATE TABLE db.g (x UInt8) ENGINE = GraphiteMergeTree('graphite_rollup') ORDER BY x;", 'db', 'g'), { engine: 'GraphiteMergeTree' });
  });

  it('refuses engines outside the MergeTree family, naming the engine', () => {
    assert.match(refusal(V18.url, 'analytics', 'urlt'), /its engine is "URL", not of the MergeTree family/);
    assert.match(refusal(V26.url, 'analytics', 'urlt'), /its engine is "URL"/);
    assert.match(refusal(V18.file, 'analytics', 'filet'), /its engine is "File"/);
    assert.match(refusal(V18.memory, 'analytics', 'mem'), /its engine is "Memory"/);
    assert.match(refusal(V26.memory, 'analytics', 'mem'), /its engine is "Memory"/);
    for (const engine of ["Distributed(c, analytics, t)", "S3('http://evil/x', 'CSV')", "MySQL('evil:3306', 'db', 't', 'u', 'p')", 'Merge(analytics, \'.*\')', 'Buffer(analytics, t, 1, 1, 1, 1, 1, 1, 1)']) {
      assert.match(refusal(`CREATE TABLE db.t (x UInt8) ENGINE = ${engine}`, 'db', 't'), /not of the MergeTree family/, engine);
    }
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = SharedMergeTree ORDER BY x', 'db', 't'), /"SharedMergeTree"/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = mergetree ORDER BY x', 'db', 't'), /"mergetree"/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ORDER BY x', 'db', 't'), /no ENGINE clause/);
  });

  it('refuses views, materialized views and other statements', () => {
    assert.match(refusal(V18.view, 'analytics', 'v'), /a CREATE VIEW statement, not CREATE TABLE/);
    assert.match(refusal(V26.view, 'analytics', 'v'), /a CREATE VIEW statement/);
    assert.match(refusal(V18.materialized, 'analytics', 'mv'), /a CREATE MATERIALIZED VIEW statement/);
    assert.match(refusal('CREATE TEMPORARY TABLE t (x UInt8) ENGINE = Memory', 'db', 't'), /CREATE TEMPORARY TABLE/);
    assert.match(refusal('ATTACH TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x', 'db', 't'), /starts with "ATTACH"/);
    assert.match(refusal('', 'db', 't'), /starts with the end of the statement/);
  });

  it('refuses a second statement, hidden or not', () => {
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x; DROP TABLE prod.orders', 'db', 't'), /more than one statement \("DROP" follows/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8 DEFAULT 1; DROP TABLE prod.orders; SELECT 1) ENGINE = MergeTree ORDER BY x', 'db', 't'), /more than one statement/);
    assert.match(refusal("CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x -- '\nDROP TABLE prod.orders", 'db', 't'), /holds a comment/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x /* */', 'db', 't'), /holds a comment/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x $$;$$', 'db', 't'), /unexpected character "\$"/);
    // A semicolon inside a string is data, not a statement break.
    assert.deepEqual(checkSavedSchema("CREATE TABLE db.t (x String DEFAULT ';DROP') ENGINE = MergeTree ORDER BY x", 'db', 't'), { engine: 'MergeTree' });
    assert.match(refusal("CREATE TABLE db.t (x String DEFAULT 'open) ENGINE = MergeTree ORDER BY x", 'db', 't'), /not terminated/);
  });

  it('refuses tables filled from a query or another table, and queries hidden in columns or settings', () => {
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x AS SELECT * FROM url(\'http://evil/\', CSV)', 'db', 't'), /AS \.\.\. after the engine/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY (SELECT 1)', 'db', 't'), /query \(SELECT\) after its engine/);
    assert.match(refusal('CREATE OR REPLACE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x', 'db', 't'), /a CREATE OR REPLACE TABLE statement/);
    assert.match(refusal('CREATE TABLE db.t ENGINE = MergeTree ORDER BY x AS SELECT 1 AS x', 'db', 't'), /column list is missing: after the table name comes "ENGINE"/);
    assert.match(refusal("CREATE TABLE db.t AS url('http://evil/', CSV)", 'db', 't'), /AS \.\.\. after the table name/);
    assert.match(refusal('CREATE TABLE db.t AS prod.orders', 'db', 't'), /AS \.\.\. after the table name/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x EMPTY AS prod.orders', 'db', 't'), /AS \.\.\. after the engine/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8 DEFAULT (SELECT max(id) FROM prod.orders)) ENGINE = MergeTree ORDER BY x', 'db', 't'), /a query \(SELECT\) in its column list/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree((SELECT 1), x, 8192)', 'db', 't'), /a query \(SELECT\) in its engine arguments/);
    assert.match(
      refusal("CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS disk = disk(type = web, endpoint = 'http://evil/')", 'db', 't'),
      /setting disk is not set to a plain value/,
    );
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS index_granularity', 'db', 't'), /SETTINGS clause has/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x ENGINE = URL(\'http://evil/\', CSV)', 'db', 't'), /second ENGINE clause/);
    assert.match(refusal('CREATE TABLE db.t ON CLUSTER c (x UInt8) ENGINE = MergeTree ORDER BY x', 'db', 't'), /after the table name comes "ON"/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY (x', 'db', 't'), /leaves a parenthesis open/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8 ENGINE = MergeTree ORDER BY x', 'db', 't'), /column list is not closed/);
    assert.match(refusal('CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x)', 'db', 't'), /closes a parenthesis it never opened/);
  });

  it('refuses a statement for another table, naming what it creates', () => {
    assert.match(refusal(V18.events, 'analytics', 'other'), /it creates "analytics"\."events", not analytics\.other/);
    assert.match(refusal(V26.events, 'shop', 'events'), /it creates "analytics"\."events", not shop\.events/);
    assert.match(refusal('CREATE TABLE events (x UInt8) ENGINE = MergeTree ORDER BY x', 'analytics', 'events'), /does not name its table as database\.table/);
    assert.match(refusal('CREATE TABLE `analytics`.`events\\`` (x UInt8) ENGINE = MergeTree ORDER BY x', 'analytics', 'events'), /creates "analytics"\."events`"/);
  });
});
