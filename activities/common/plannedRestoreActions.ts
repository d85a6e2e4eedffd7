import type { S3Client } from '@aws-sdk/client-s3';
import type { Component } from '../../contracts/backupTypes';
import type { DestructiveAction, RestoreTask } from '../../contracts/restoreTypes';
import type { ActivityDeps } from '../deps';

/** What each system is given to say what a restore would destroy there. */
export interface RestoreActionContext {
  deps: ActivityDeps;
  /** A client of the backup bucket, where the saved Kafka metadata and bucket listings are. */
  s3: S3Client;
  restoreId: string;
  /** The marker value a drill's or beside-production restore's own targets carry. */
  owner: string;
}

/**
 * One system's "what would a restore destroy here": the destructive actions its tasks would take,
 * read from the live system without changing anything. Each system's restoreActions.ts has one.
 */
export type PlannedRestoreActions<T extends RestoreTask> = (context: RestoreActionContext, tasks: T[]) => Promise<DestructiveAction[]>;

/** The restore tasks of one component. */
export type TaskOf<C extends Component> = Extract<RestoreTask, { component: C }>;
