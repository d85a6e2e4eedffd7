import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';

export interface Notification {
  /** 'reminder' (a person is needed), 'breach' (a target missed), 'failure', 'info'. */
  kind: 'reminder' | 'breach' | 'failure' | 'info';
  title: string;
  text: string;
  workflowId?: string;
}

export interface NotifyResult {
  delivered: 'webhook' | 'log';
  status?: number;
}

export function createNotifyActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  return {
    /**
     * Sends a notification to the configured Slack-compatible webhook (POST {"text": ...}), or
     * only logs it when none is configured. A webhook that answers with an error fails the
     * activity, so the workflow's retry policy tries again.
     */
    async notify(notification: Notification): Promise<NotifyResult> {
      const text = `[ballast ${config.environment}] ${notification.kind.toUpperCase()}: ${notification.title}\n${notification.text}${
        notification.workflowId ? `\nworkflow: ${notification.workflowId}` : ''
      }`;
      const log = Context.current().log;
      const url = connections.notifyWebhookUrl;
      if (!url) {
        log.warn(`notification (no webhook configured): ${text}`);
        return { delivered: 'log' };
      }
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text, kind: notification.kind, title: notification.title, workflowId: notification.workflowId }),
        signal: AbortSignal.timeout(config.notify.timeoutSeconds * 1000),
      });
      if (!response.ok) throw new Error(`notification webhook answered HTTP ${response.status}`);
      log.info(`notification sent: ${notification.title}`);
      return { delivered: 'webhook', status: response.status };
    },
  };
}
