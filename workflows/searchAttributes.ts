import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes ballast sets on its runs, so operators can filter the Temporal UI
 * ("all runs in production", "the runs of this backup"). The local stack registers them at start;
 * a remote cluster needs them registered once by its admin (see README).
 */
export const environmentKey = defineSearchAttributeKey('BallastEnvironment', 'KEYWORD');
export const backupIdKey = defineSearchAttributeKey('BallastBackupId', 'KEYWORD');

export const ballastSearchAttributes = [environmentKey, backupIdKey] as const;
