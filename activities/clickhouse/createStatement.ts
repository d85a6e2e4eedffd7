/**
 * The saved CREATE statement, renamed into the target database. Pure text work: no I/O.
 */
import { qualifiedName, quoteIdentifier } from './sql';
import { readQuoted } from './savedSchema';

const CREATE_KINDS = /^\s*CREATE\s+(TABLE|VIEW|MATERIALIZED\s+VIEW|LIVE\s+VIEW|WINDOW\s+VIEW|DICTIONARY)\s+(?:IF\s+NOT\s+EXISTS\s+)?/i;

/** Reads one identifier (bare, `back-quoted` or "double-quoted") at `at`: its name and where it ends. */
function readIdentifier(text: string, at: number): { name: string; end: number } | undefined {
  const quote = text[at];
  if (quote === '`' || quote === '"') {
    const quoted = readQuoted(text, at);
    return quoted && { name: quoted.value, end: quoted.end };
  }
  const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at));
  return m ? { name: m[0], end: at + m[0].length } : undefined;
}

export interface RenamedStatement {
  /** TABLE, VIEW, MATERIALIZED VIEW, ... as written. */
  kind: string;
  statement: string;
}

/**
 * Rewrites `CREATE <kind> <db>.<table> ...` (names bare or quoted, as SHOW CREATE TABLE prints them
 * on 18.16 and current releases) into `CREATE <kind> `target`.`newTable` ...` (`newTable`: the
 * table's own name unless given); throws when the statement does not start with exactly that name.
 */
export function renameCreateStatement(statement: string, database: string, table: string, target: string, newTable = table): RenamedStatement {
  const head = CREATE_KINDS.exec(statement);
  const fail = (why: string): never => {
    throw new Error(
      `the saved schema of ${database}.${table} ${why}; it starts ${JSON.stringify(statement.slice(0, 120))}, expected CREATE TABLE ${database}.${table}`,
    );
  };
  if (!head) return fail('is not a CREATE TABLE/VIEW statement');
  const db = readIdentifier(statement, head[0].length);
  if (!db || statement[db.end] !== '.') return fail('does not name its database');
  const name = readIdentifier(statement, db.end + 1);
  if (!name) return fail('does not name its table');
  if (db.name !== database || name.name !== table) return fail(`names ${db.name}.${name.name}`);
  const rest = statement.slice(name.end);
  if (rest !== '' && !/^[\s(]/.test(rest)) return fail('has unexpected text after the table name');
  const kind = head[1]!.replace(/\s+/g, ' ').toUpperCase();
  return { kind, statement: `CREATE ${kind} ${qualifiedName(target, newTable)}${rest}` };
}

/** Whether SQL text names `database` as a qualifier (`db.x`, `` `db`.x `` or `"db".x`). */
export function mentionsDatabase(sql: string, database: string): boolean {
  const bare = /^[A-Za-z_][A-Za-z0-9_]*$/.test(database);
  const forms = [`${quoteIdentifier(database)}.`, `"${database}".`];
  if (bare) forms.push(`${database}.`);
  return forms.some((form) => {
    for (let at = sql.indexOf(form); at >= 0; at = sql.indexOf(form, at + 1)) {
      if (!bare || at === 0 || !/[A-Za-z0-9_]/.test(sql[at - 1]!)) return true;
    }
    return false;
  });
}
