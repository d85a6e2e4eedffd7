import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { heartbeatingActivities, resumeProblem } from '../../workflows/activityOptions';

describe('activity options: a dead worker stalls no run for more than 30 s', () => {
  it('accepts every option set the workflows build', () => {
    assert.equal(resumeProblem('writeManifest', heartbeatingActivities({ startToCloseTimeout: '6 hours', maximumAttempts: 5 })), undefined);
  });

  it('refuses a long step without a heartbeat timeout, naming it and its timeouts', () => {
    const problem = resumeProblem('planBackup', { startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5 } });
    assert.match(problem ?? '', /activity planBackup: a dead worker would hold it for 600 s \(heartbeat timeout none, start-to-close 600 s/);
  });

  it('counts the first retry\'s wait: a 30 s heartbeat timeout with a 2 s first retry is too slow', () => {
    assert.match(resumeProblem('backupBucket', { startToCloseTimeout: '6 hours', heartbeatTimeout: '30 seconds', retry: { initialInterval: '2 seconds' } }) ?? '', /first retry after 2 s/);
  });

  it('accepts a short step bounded by its start-to-close timeout alone', () => {
    assert.equal(resumeProblem('notify', { startToCloseTimeout: '20 seconds' }), undefined);
  });

  it('refuses a step with no timeout at all', () => {
    assert.match(resumeProblem('x', { scheduleToCloseTimeout: '1 hour' }) ?? '', /hold it for ever/);
  });
});
