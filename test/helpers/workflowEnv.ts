// In localStack/ so that scripts/recordHistories.ts shares it without importing test code.
export { createTestEnvironment, workflowBundle } from '../../localStack/workflowEnv';
