/**
 * The demo-marker command: marks every system the config's demoReset acts on as a demo (a
 * `__ballast_demo` table in each Postgres and ClickHouse database, the demoReset.kafkaMarkerTopic
 * topic, the bucket tag ballast-environment=demo), so that demoReset may wipe it. Refused unless
 * the config's environment is demo. Run it once per demo platform, deliberately:
 *
 *   BALLAST_CONFIG=/etc/ballast/demo.yaml node --import tsx scripts/markDemo.ts
 */
import { writeDemoMarkers } from '../activities/demoReset/activities';
import { loadConfig } from '../workers/config';
import { createConnections } from '../workers/connections';

if (require.main === module) {
  const { config, path } = loadConfig();
  writeDemoMarkers({ config, connections: createConnections(config, path) }, (line) => console.log(`marked ${line}`)).catch((err) => {
    console.error('demo markers failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
