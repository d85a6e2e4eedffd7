import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

// The layering a newcomer relies on to know which file is theirs (see README, "What is here").
// Each folder has a rank; code imports only from its own rank or below, and a system folder
// never reaches into another system's folder. Two imports go the other way by design, and only
// those: workflows import activities as types (proxyActivities<typeof activities>), and the local
// broker-restart backend drives the local stack, with the worker's own config file.

const repoRoot = path.resolve(__dirname, '../..');
const SYSTEMS = ['postgres', 'clickhouse', 'kafka', 'objectStore', 'notify'];
const LOCAL_RESTART_BACKEND = 'activities/kafka/roll/restart/local.ts';

function rankOf(file: string): number {
  const [top, second] = file.split('/');
  if (top === 'contracts') return 0;
  if (top === 'activities') {
    // approval/ is shared by every destructive runbook's activities: plan hashes, the policy, signatures.
    if (second === 'common' || second === 'storage' || second === 'approval' || second === 'deps.ts') return 1;
    if (SYSTEMS.includes(second!)) return 2;
    if (second === 'backup' || second === 'restore') return 3;
    return 4;
  }
  if (top === 'workflows') return 4;
  if (top === 'workers') return 5;
  if (top === 'localStack') return 6;
  return 7;
}

function systemOf(file: string): string | undefined {
  const [top, second] = file.split('/');
  return top === 'activities' && SYSTEMS.includes(second!) ? second : undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(rel);
    return entry.name.endsWith('.ts') ? [rel] : [];
  });
}

interface ProjectImport {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** Every import of a project file, static or dynamic, resolved to its file. */
function projectImports(file: string): ProjectImport[] {
  const source = ts.createSourceFile(file, readFileSync(path.join(repoRoot, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: ProjectImport[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    if (!specifier.startsWith('.')) return;
    const base = path.normalize(path.join(path.dirname(file), specifier));
    const to = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => {
      try {
        readFileSync(path.join(repoRoot, candidate));
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(to, `${file}: cannot resolve ${specifier}`);
    found.push({ from: file, to, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node)
        ? Boolean(node.importClause?.isTypeOnly) ||
          Boolean(node.importClause && !node.importClause.name && node.importClause.namedBindings && ts.isNamedImports(node.importClause.namedBindings) && node.importClause.namedBindings.elements.every((e) => e.isTypeOnly))
        : node.isTypeOnly;
      add(node.moduleSpecifier.text, typeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const allImports = ['contracts', 'activities', 'workflows', 'workers', 'localStack', 'scripts', 'test'].flatMap(sourceFiles).flatMap(projectImports);

function isAllowedUpward(i: ProjectImport): boolean {
  if (i.from.startsWith('workflows/') && i.to.startsWith('activities/') && i.typeOnly) return true;
  return i.from === LOCAL_RESTART_BACKEND && (i.to.startsWith('localStack/') || i.to === 'workers/config.ts');
}

describe('layout', () => {
  it('no import runs from lower-level code up to higher-level code', () => {
    const upward = allImports.filter((i) => rankOf(i.to) > rankOf(i.from) && !isAllowedUpward(i));
    console.log(`# ${allImports.length} project imports, ${upward.length} upward`);
    assert.deepEqual(upward.map((i) => `${i.from} -> ${i.to}`), []);
  });

  it("a system's folder never imports another system's", () => {
    const sideways = allImports.filter((i) => systemOf(i.from) && systemOf(i.to) && systemOf(i.from) !== systemOf(i.to));
    assert.deepEqual(sideways.map((i) => `${i.from} -> ${i.to}`), []);
  });

  it('only the local restart backend, under activities/, knows the local stack', () => {
    const users = allImports.filter((i) => i.from.startsWith('activities/') && i.to.startsWith('localStack/')).map((i) => i.from);
    assert.deepEqual([...new Set(users)], [LOCAL_RESTART_BACKEND]);
  });

  it('scripts and the local stack never import test code', () => {
    const bad = allImports.filter((i) => !i.from.startsWith('test/') && i.to.startsWith('test/'));
    assert.deepEqual(bad.map((i) => `${i.from} -> ${i.to}`), []);
  });
});
