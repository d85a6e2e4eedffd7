/**
 * Loads realistic data into every store of the platform the config describes, so backups,
 * restores and drills have something real to move. Safe to run again: Postgres and ClickHouse are
 * rebuilt to the same state, Kafka topics are filled only when empty, objects are overwritten.
 *
 *   npm run seed            (BALLAST_CONFIG picks the config, default ./ballast.yaml)
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { writeDemoMarkers } from '../activities/demoReset/activities';
import { createTopicsAndWait, retryOnLeaderChange } from '../activities/kafka/topics';
import { loadConfig } from '../workers/config';
import { createConnections, type Connections } from '../workers/connections';
import type { Config } from '../workers/config';

export const SEED = {
  customers: 5_000,
  products: 400,
  orders: 20_000,
  clickhouseMonths: 6,
  clickhouseRowsPerInsert: 50_000,
  clickhouseInsertsPerMonth: 4,
  topics: [
    { topic: 'orders', numPartitions: 6, messages: 3_000 },
    { topic: 'payments', numPartitions: 3, messages: 1_500 },
  ],
  consumerGroup: 'billing',
  objects: 60,
} as const;

export async function seedPostgres(config: Config, connections: Connections): Promise<string> {
  const database = config.postgres.databases[0]!;
  // The database itself may be gone too (a restore test or a real incident dropped it).
  const admin = new pg.Client(connections.postgres());
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!found.rowCount) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client(connections.postgres(database));
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('DROP TABLE IF EXISTS order_items, orders, products, customers CASCADE');
    await client.query('DROP SEQUENCE IF EXISTS invoice_number_seq');
    await client.query(`
      CREATE SEQUENCE invoice_number_seq START 100000;
      CREATE TABLE customers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL UNIQUE,
        name text NOT NULL,
        country char(2) NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE products (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        sku text NOT NULL UNIQUE,
        title text NOT NULL,
        price_cents integer NOT NULL CHECK (price_cents > 0)
      );
      CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers(id),
        invoice_number bigint NOT NULL UNIQUE DEFAULT nextval('invoice_number_seq'),
        status text NOT NULL,
        ordered_at timestamptz NOT NULL
      );
      CREATE TABLE order_items (
        order_id bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        product_id bigint NOT NULL REFERENCES products(id),
        quantity integer NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (order_id, product_id)
      );
      CREATE INDEX orders_customer_idx ON orders (customer_id);
    `);
    // Generated in SQL so the data is deterministic and the seed stays fast at any size.
    await client.query(
      `INSERT INTO customers (email, name, country, created_at)
       SELECT 'customer' || g || '@example.com', 'Customer ' || g,
              (ARRAY['DE','FR','GB','US','JP','BR'])[1 + g % 6],
              timestamptz '2024-01-01' + (g || ' minutes')::interval
       FROM generate_series(1, $1::int) g`,
      [SEED.customers],
    );
    await client.query(
      `INSERT INTO products (sku, title, price_cents)
       SELECT 'SKU-' || lpad(g::text, 5, '0'), 'Product ' || g, 100 + (g * 37) % 9900
       FROM generate_series(1, $1::int) g`,
      [SEED.products],
    );
    await client.query(
      `INSERT INTO orders (customer_id, status, ordered_at)
       SELECT 1 + (g * 7919) % $2::int, (ARRAY['paid','shipped','delivered','refunded'])[1 + g % 4],
              timestamptz '2025-01-01' + (g * 13 || ' minutes')::interval
       FROM generate_series(1, $1::int) g`,
      [SEED.orders, SEED.customers],
    );
    await client.query(
      `INSERT INTO order_items (order_id, product_id, quantity)
       SELECT o.id, 1 + (o.id * k) % $1::int, 1 + (o.id + k) % 5
       FROM orders o CROSS JOIN generate_series(1, 3) k
       ON CONFLICT DO NOTHING`,
      [SEED.products],
    );
    await client.query('COMMIT');
    await client.query('ANALYZE');
    const counts = await client.query<{ t: string; n: string }>(
      `SELECT 'customers' t, count(*) n FROM customers UNION ALL SELECT 'products', count(*) FROM products
       UNION ALL SELECT 'orders', count(*) FROM orders UNION ALL SELECT 'order_items', count(*) FROM order_items`,
    );
    return `postgres ${database}: ${counts.rows.map((r) => `${r.t}=${r.n}`).join(' ')}`;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

export async function seedClickHouse(config: Config, connections: Connections): Promise<string> {
  const database = config.clickhouse.databases[0]!.name;
  const client = connections.clickhouse();
  try {
    await client.command({ query: `DROP TABLE IF EXISTS ${database}.events` });
    // Syntax that ClickHouse 18.16 and current releases both accept.
    await client.command({
      query: `CREATE TABLE ${database}.events (
        event_date Date,
        event_time DateTime,
        user_id UInt64,
        event_type String,
        amount Float64
      ) ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id)`,
    });
    // One INSERT is one part: several inserts per month give several parts per partition.
    for (let batch = 0; batch < SEED.clickhouseInsertsPerMonth; batch++) {
      for (let month = 0; month < SEED.clickhouseMonths; month++) {
        await client.command({
          query: `INSERT INTO ${database}.events
            SELECT addMonths(toDate('2026-01-01'), ${month}) + (number % 28),
                   addMonths(toDateTime('2026-01-01 00:00:00'), ${month}) + number * 37 % (28 * 86400),
                   (number * 2654435761 + ${batch}) % 10000,
                   arrayElement(['view','click','cart','purchase'], 1 + (number + ${batch}) % 4),
                   ((number * 7 + ${batch}) % 10000) / 100
            FROM numbers(${SEED.clickhouseRowsPerInsert})`,
        });
      }
    }
    const result = await client.query({
      query: `SELECT partition, sum(rows) AS rows, count() AS parts FROM system.parts
              WHERE database = '${database}' AND table = 'events' AND active GROUP BY partition ORDER BY partition`,
      format: 'JSONEachRow',
    });
    const partitions = await result.json<{ partition: string; rows: string; parts: string }>();
    return `clickhouse ${database}.events: ${partitions.map((p) => `${p.partition}=${p.rows} rows/${p.parts} parts`).join(' ')}`;
  } finally {
    await client.close();
  }
}

/**
 * Fills each topic up to its messages (created if missing): a topic a demo reset purged keeps its
 * offsets, so what it holds (high watermark minus log start) is what counts, not whether it was
 * ever written. The group has consumed half of the first topic: realistic lag for a restore to keep.
 */
export async function seedKafka(
  connections: Connections,
  topics: readonly { topic: string; numPartitions: number; messages: number }[] = SEED.topics,
  consumerGroup: string = SEED.consumerGroup,
): Promise<string> {
  const kafka = connections.kafka();
  const admin = kafka.admin({ retry: { retries: 10, initialRetryTime: 300 } });
  // Leadership of brand-new topics still moves on a young cluster (NOT_LEADER_FOR_PARTITION):
  // more retries than the worker's clients use, since a seed has no one to report to.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 10, initialRetryTime: 300 } });
  await admin.connect();
  await producer.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length) {
      await createTopicsAndWait(
        admin,
        missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: 3 })),
      );
    }
    const lines: string[] = [];
    const held = async (topic: string) => (await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic))).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    for (const t of topics) {
      for (let start = await held(t.topic); start < t.messages; start += 500) {
        const messages = Array.from({ length: Math.min(500, t.messages - start) }, (_, i) => {
          const n = start + i;
          return { key: `${t.topic}-${n % 97}`, value: JSON.stringify({ id: n, amountCents: (n * 37) % 10000, at: 1767225600000 + n * 1000 }) };
        });
        await producer.send({ topic: t.topic, acks: -1, messages });
      }
      const offsets = await retryOnLeaderChange(admin, [t.topic], () => admin.fetchTopicOffsets(t.topic));
      lines.push(`${t.topic}=${await held(t.topic)} messages/${offsets.length} partitions`);
    }
    const first = topics[0]!.topic;
    const ends = await retryOnLeaderChange(admin, [first], () => admin.fetchTopicOffsets(first));
    await retryOnLeaderChange(admin, [first], () =>
      admin.setOffsets({
        groupId: consumerGroup,
        topic: first,
        partitions: ends.map((p) => ({ partition: p.partition, offset: String(Math.floor((Number(p.low) + Number(p.high)) / 2)) })),
      }),
    );
    lines.push(`group ${consumerGroup} committed on ${first}`);
    return `kafka: ${lines.join(' ')}`;
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}

export async function seedObjectStore(config: Config, connections: Connections): Promise<string> {
  const bucket = config.objectStore.buckets[0];
  if (!bucket) return 'object store: no data bucket configured, nothing seeded';
  const s3 = connections.s3();
  try {
    let bytes = 0;
    for (let i = 0; i < SEED.objects; i++) {
      const kind = i % 3 === 0 ? 'exports' : i % 3 === 1 ? 'images' : 'reports';
      const key = `${kind}/2026-${String(1 + (i % 12)).padStart(2, '0')}/object-${String(i).padStart(4, '0')}.${kind === 'images' ? 'bin' : 'csv'}`;
      const size = 1024 * (1 + ((i * 131) % 256));
      const body = Buffer.alloc(size, `${key}\n`);
      bytes += size;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
    return `object store ${bucket}: ${SEED.objects} objects, ${bytes} bytes`;
  } finally {
    s3.destroy();
  }
}

export async function seedPlatform(config: Config, connections: Connections): Promise<string[]> {
  return Promise.all([
    seedPostgres(config, connections),
    seedClickHouse(config, connections),
    seedKafka(connections),
    seedObjectStore(config, connections),
  ]);
}

if (require.main === module) {
  const { config, path } = loadConfig();
  const connections = createConnections(config, path);
  seedPlatform(config, connections)
    .then(async (lines) => {
      for (const line of lines) console.log(`seeded ${line}`);
      // The local stack is the demo: demoReset may wipe it (scripts/markDemo.ts does this elsewhere).
      if (config.environment === 'demo') await writeDemoMarkers({ config, connections }, (line) => console.log(`marked ${line}`));
    })
    .catch((err) => {
      console.error('seed failed:', err);
      process.exit(1);
    });
}
