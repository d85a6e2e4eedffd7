/** Where the worker finds the workflow code it bundles. */
export const workflowsPath = require.resolve('../workflows');

/** The workflow interceptor that reports each run's start and end to the worker's metrics. */
export const runMetricsInterceptorPath = require.resolve('../workflows/runMetrics');
