import { strict as assert } from 'node:assert';
import { read } from 'node:fs';
import { describe, it } from 'node:test';
import { startProcessIntoFifo } from '../../activities/common/process';

// Real programs (printf, yes), no services: the FIFO a program's output comes through.

const readSome = (fd: number, buffer: Buffer) => new Promise<number>((resolve, reject) => read(fd, buffer, 0, buffer.length, null, (err, n) => (err ? reject(err) : resolve(n))));

describe('startProcessIntoFifo', () => {
  it("hands the caller exactly the program's output, then the end of file once it exits", async () => {
    const program = await startProcessIntoFifo('printf', 'printf', ['%s', 'hello through a fifo']);
    try {
      const buffer = Buffer.alloc(1024);
      let got = '';
      for (let n = await readSome(program.fd, buffer); n > 0; n = await readSome(program.fd, buffer)) got += buffer.subarray(0, n).toString();
      assert.equal(got, 'hello through a fifo');
      await program.done;
    } finally {
      program.close();
    }
  });

  it('a program whose reader goes away fails on its next write instead of waiting forever (a dead worker leaves no pg_dump behind)', async () => {
    const program = await startProcessIntoFifo('yes', 'yes', ['never read']);
    const buffer = Buffer.alloc(16);
    assert.ok((await readSome(program.fd, buffer)) > 0, 'it writes');
    program.close();
    const ended = await Promise.race([program.done.then(() => 'exited 0', (err: Error) => err.message), new Promise<string>((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    if (ended === 'still running after 10 s') program.kill();
    assert.match(ended, /^yes failed \(SIGPIPE\)/);
  });

  it('names a program that cannot start', async () => {
    const program = await startProcessIntoFifo('the dump', '/nonexistent/pg_dump', []);
    try {
      await assert.rejects(program.done, /the dump failed/);
    } finally {
      program.close();
    }
  });
});
