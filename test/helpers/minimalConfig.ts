/** The smallest config the schema accepts: each unit test of a section adds that section to it. */
export const minimalConfig = {
  environment: 'demo',
  postgres: { user: 'ballast', databases: ['shop'] },
  clickhouse: { url: 'http://127.0.0.1:8123', databases: [{ name: 'analytics' }] },
  kafka: { brokers: [{ id: 1, host: '127.0.0.1', port: 9092 }] },
  objectStore: { backupBucket: 'ballast-backups' },
} as const;
