// The worker bundles this file: every workflow ballast runs is exported here.
export { healthCheck } from './healthCheck';
export { platformBackup } from './platformBackup';
export { restore } from './restore';
export { drDrill } from './drDrill';
export { kafkaRollingRestart } from './kafkaRollingRestart';
export { demoReset } from './demoReset';
export { compaction } from './compaction';
