import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/workflowEnv';

// Histories recorded by scripts/recordHistories.ts from earlier versions of the workflows. If a
// change makes one fail to replay, runs already in flight would fail the same way after a deploy.
const historiesDir = path.join(__dirname, 'histories');
const files = readdirSync(historiesDir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    assert.ok(files.length >= 2, `only ${files.length} histories in ${historiesDir}`);
  });

  for (const file of files) {
    it(`replays ${file} without nondeterminism`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(historiesDir, file), 'utf8')));
      // A file is named after the workflow id it was recorded under; "<id>--<label>.json" keeps an
      // older recording of the same run beside a newer one (a workflow whose code changed behind
      // patched() must replay both).
      const workflowId = path.basename(file, '.json').split('--')[0]!;
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    });
  }
});
