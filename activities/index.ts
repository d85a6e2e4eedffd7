import { createClickHouseActivities } from './clickhouse';
import type { ActivityDeps } from './deps';
import { createKafkaActivities } from './kafka';
import { createObjectStoreActivities } from './objectStore';
import { createPostgresActivities } from './postgres';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, built from the config's connections. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createPostgresActivities(deps),
    ...createClickHouseActivities(deps),
    ...createKafkaActivities(deps),
    ...createObjectStoreActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
