import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNotifyActivities } from '../../activities/notify/notify';
import { parseConfig } from '../../workers/config';
import type { Connections } from '../../workers/connections';

// A real HTTP server stands in for the Slack-compatible webhook; the connections object is a
// stand-in that only carries the webhook URL, the one thing the notifier reads from it.
const config = parseConfig({
  environment: 'staging',
  postgres: { user: 'u', databases: ['db'] },
  clickhouse: { url: 'http://127.0.0.1:1', databases: [{ name: 'a' }] },
  kafka: { brokers: [{ id: 1, host: '127.0.0.1', port: 1 }] },
  objectStore: { backupBucket: 'backups' },
});

describe('notify', () => {
  let server: Server;
  let url: string;
  const received: { body: string; type?: string }[] = [];
  let status = 200;

  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ body, type: req.headers['content-type'] });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  after(() => server.close());

  const activities = (webhook: string | undefined) => createNotifyActivities({ config, connections: { notifyWebhookUrl: webhook } as Connections });

  it('posts a Slack-compatible {"text"} message to the webhook', async () => {
    const result = await new MockActivityEnvironment().run(activities(url).notify, { kind: 'breach' as const, title: 'RTO breached', text: 'RTO 75 min > 60', workflowId: 'wf-1' });
    assert.deepEqual(result, { delivered: 'webhook', status: 200 });
    const body = JSON.parse(received.at(-1)!.body) as { text: string; kind: string };
    assert.equal(received.at(-1)!.type, 'application/json');
    assert.match(body.text, /^\[ballast staging\] BREACH: RTO breached\nRTO 75 min > 60\nworkflow: wf-1$/);
    assert.equal(body.kind, 'breach');
  });

  it('fails (so the workflow retries) when the webhook answers with an error', async () => {
    status = 500;
    await assert.rejects(new MockActivityEnvironment().run(activities(url).notify, { kind: 'reminder' as const, title: 't', text: 'x' }), /answered HTTP 500/);
    status = 200;
  });

  it('only logs when no webhook is configured', async () => {
    const before_ = received.length;
    const result = await new MockActivityEnvironment().run(activities(undefined).notify, { kind: 'info' as const, title: 't', text: 'x' });
    assert.deepEqual(result, { delivered: 'log' });
    assert.equal(received.length, before_);
  });
});
