import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { CRON_SHORTCUTS, cronProblem } from '../../contracts/cron';

describe('cronProblem', () => {
  it('accepts five fields of numbers, ranges, steps, lists, * and names', () => {
    for (const cron of [
      '0 2 * * *',
      '0 3 1 * *',
      '*/15 * * * *',
      '0 0-23/6 * * *',
      '5,35 9-17 * * mon-fri',
      '0 12 * JAN,Jul *',
      '0 4 * * SUN',
      '0 4 * * 7',
      '59 23 31 12 *',
      '0 2 * * *,1',
      '  0\t2 * * *  ',
      '0 1 */2 JAN-JUN/2 *',
    ]) {
      assert.equal(cronProblem(cron), undefined, cron);
    }
  });

  it("accepts exactly the shortcuts Temporal's server expands", () => {
    assert.deepEqual([...CRON_SHORTCUTS], ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
    for (const cron of CRON_SHORTCUTS) assert.equal(cronProblem(cron), undefined, cron);
  });

  it('refuses what is not a five-field cron expression, saying why', () => {
    const cases: [string, string][] = [
      ['', '0 fields; expected 5 fields'],
      ['0 2 * *', '4 fields; expected 5 fields'],
      ['0 0 2 * * *', '6 fields; expected 5 fields'],
      ['TZ=Europe/Paris 0 2 * * *', '6 fields'],
      ['0 2 * * * # nightly', '7 fields'],
      ['@every 1h', 'unknown shortcut; expected 5 fields'],
      ['@DAILY', 'unknown shortcut'],
      ['@reboot', 'unknown shortcut'],
      [' @daily', '@daily must stand alone, without spaces around it'],
      ['60 2 * * *', 'minute 60 is out of range 0-59'],
      ['0 24 * * *', 'hour 24 is out of range 0-23'],
      ['0 2 0 * *', 'day-of-month 0 is out of range 1-31'],
      ['0 2 * 13 *', 'month 13 is out of range 1-12'],
      ['0 2 * * 8', 'day-of-week 8 is out of range 0-7'],
      ['0 2 * JANUARY *', 'month "JANUARY" is not a number or a name JAN-DEC'],
      ['0 2 MON * *', 'day-of-month "MON" is not a number'],
      ['0 2 * * FOO', 'day-of-week "FOO" is not a number or a name SUN-SAT'],
      ['0 2 * * L', 'day-of-week "L" is not a number'],
      ['0 2 ? * *', 'day-of-month "?" is not a number'],
      ['0 2,,3 * * *', 'hour "" is not a number'],
      ['-1 2 * * *', 'minute "" is not a number'],
      ['0 17-9 * * *', 'hour range "17-9" runs backwards'],
      ['0 2 * * FRI-MON', 'day-of-week range "FRI-MON" runs backwards'],
      ['0 1-2-3 * * *', 'hour "1-2-3" is not a value or a range'],
      ['*/0 * * * *', 'minute step "0" in "*/0" must be a whole number from 1 to 60'],
      ['*/61 * * * *', 'minute step "61" in "*/61" must be a whole number from 1 to 60'],
      ['*/x * * * *', 'minute step "x"'],
      ['*/5/2 * * * *', 'minute "*/5/2" has more than one step'],
      ['5/15 * * * *', 'minute "5/15": a step needs * or a range before it (write 5-59/15)'],
      ['0 3 1 * MON', 'day-of-month "1" and day-of-week "MON" are both set: Temporal runs only on days matching both, where crontab runs on days matching either; set one of them and leave the other *'],
    ];
    for (const [cron, expected] of cases) {
      const problem = cronProblem(cron);
      assert.ok(problem?.startsWith(`${JSON.stringify(cron)} is not a cron expression: `), `${cron}: ${problem}`);
      assert.ok(problem?.includes(expected), `${cron}: expected "${expected}" in: ${problem}`);
    }
  });
});
