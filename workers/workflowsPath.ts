/** Where the worker finds the workflow code it bundles. */
export const workflowsPath = require.resolve('../workflows');
