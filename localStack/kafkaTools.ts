import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureTool, type CachedTool } from './cachedTools';
import { runCommand, runLogged } from './commands';
import { ensureDebianPackages } from './debianPackages';
import { logFile, serviceDir } from './paths';

const VERSION = '3.9.1';

/** Maven resolves the broker, the command-line tools and an SLF4J binding with all their dependencies. */
const POM = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/stack: the jars of Apache Kafka ${VERSION}, fetched from Maven Central. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ballast.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`;

function classpath(dir: string): string {
  // The JVM expands the wildcard itself; no shell is involved.
  return `${path.join(dir, 'libs')}/*`;
}

const kafkaJars: CachedTool = {
  name: 'kafka',
  version: VERSION,
  build: async (dir, log) => {
    await ensureDebianPackages([{ provides: 'mvn', package: 'maven' }], log);
    const pom = path.join(dir, 'pom.xml');
    writeFileSync(pom, POM);
    await runLogged(
      'mvn',
      ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(dir, 'libs')}`, '-DincludeScope=runtime'],
      logFile('install-kafka'),
      { cwd: dir },
    );
  },
  verify: async (dir) => {
    try {
      return (await runCommand('java', ['-cp', classpath(dir), 'kafka.Kafka', '--version'])).includes(VERSION);
    } catch {
      return false;
    }
  },
};

/** Installs Java and the Kafka jars if missing; returns the classpath. */
export async function kafkaClasspath(log: (line: string) => void): Promise<string> {
  await ensureDebianPackages([{ provides: 'java', package: 'openjdk-17-jre-headless' }], log);
  return classpath(await ensureTool(kafkaJars, log));
}

/** Tools print their result on stdout; their own logging stays on stderr and quiet. */
function toolsLog4j(): string {
  const file = path.join(serviceDir('kafka'), 'tools-log4j.properties');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    [
      'log4j.rootLogger=WARN, stderr',
      'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stderr.Target=System.err',
      'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * Runs one of Kafka's own command-line tools by class name with the cached jars and returns its
 * stdout, e.g. `runKafkaTool('org.apache.kafka.tools.MetadataQuorumCommand',
 * ['--bootstrap-server', '127.0.0.1:19092', 'describe', '--status'])` for the KRaft quorum leader,
 * which kafkajs cannot tell.
 */
export async function runKafkaTool(
  className: string,
  args: string[],
  options: { timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<string> {
  const cp = await kafkaClasspath(options.log ?? (() => {}));
  return runCommand(
    'java',
    ['-Xmx256m', '-XX:+UseSerialGC', `-Dlog4j.configuration=file:${toolsLog4j()}`, '-cp', cp, className, ...args],
    { timeoutMs: options.timeoutMs ?? 60_000 },
  );
}
