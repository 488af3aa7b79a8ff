import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { ENV_SETTINGS, loadConfig } from '../../src/config/load.js';
import { startHttpServer } from '../../src/http/server.js';

/**
 * deploy/kubernetes as `kubectl kustomize` renders it: every object valid against the Kubernetes
 * schemas, every env name a real setting, the config file a valid config, probes and scrape
 * annotations on paths and the port the server really serves, the grace consistent, and the
 * restricted Pod Security Standard. A plain unit test: it needs kubectl, not podman.
 */

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface ContainerSpec {
  name: string;
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface DeploymentSpec {
  replicas: number;
  strategy?: { type: string };
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string> };
    spec: {
      terminationGracePeriodSeconds?: number;
      securityContext?: Record<string, unknown>;
      containers: ContainerSpec[];
      volumes: {
        name: string;
        persistentVolumeClaim?: { claimName: string };
        configMap?: { name: string };
      }[];
    };
  };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, string>;
}

/** The schema model of each kind the manifests use; a kind without one fails the test. */
const MODELS: Record<string, (object: K8sObject) => { validate: () => void }> = {
  'apps/v1 Deployment': (o) => new Deployment(o as ConstructorParameters<typeof Deployment>[0]),
  'v1 Service': (o) => new Service(o as ConstructorParameters<typeof Service>[0]),
  'v1 ConfigMap': (o) => new ConfigMap(o),
  'v1 PersistentVolumeClaim': (o) =>
    new PersistentVolumeClaim(o as ConstructorParameters<typeof PersistentVolumeClaim>[0]),
};

function render(): K8sObject[] {
  let text: string;
  try {
    text = execFileSync('kubectl', ['kustomize', 'deploy/kubernetes'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(
      `kubectl kustomize deploy/kubernetes failed (is kubectl installed?): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return parseAllDocuments(text).map((doc) => doc.toJS() as K8sObject);
}

// kubectl is on this project's machines and required in CI; elsewhere these checks say they
// were skipped rather than fail a first `npm test`.
const haveKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
if (!haveKubectl && process.env['CI'] === 'true')
  throw new Error('kubectl is required in CI to render deploy/kubernetes');
if (!haveKubectl) console.warn('kubectl not installed: skipping the Kubernetes manifest checks');
const describeWithKubectl = haveKubectl ? describe : describe.skip;
const objects = haveKubectl ? render() : [];
const one = (kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const deployment = () => one('Deployment').spec as DeploymentSpec;
const watcher = () => {
  const [container, ...others] = deployment().template.spec.containers;
  expect(others).toEqual([]);
  return container!;
};

/** The port number a probe or Service names, by number or by the container port's name. */
function portNumber(port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return watcher().ports?.find((p) => p.name === port)?.containerPort;
}

/** The config the pod would load: its env, the Secret's keys with test values, the ConfigMap file. */
function podConfig() {
  const configMap = one('ConfigMap');
  const dir = mkdtempSync(path.join(tmpdir(), 'k8s-config-'));
  const env: Record<string, string> = {};
  for (const { name, value, valueFrom } of watcher().env ?? []) {
    if (valueFrom?.secretKeyRef) {
      env[name] =
        name === 'WEBHOOK_SECRET'
          ? `whsec_${Buffer.alloc(32, 7).toString('base64')}`
          : 'test-value';
    } else env[name] = value ?? '';
  }
  const mount = watcher().volumeMounts?.find((m) =>
    env['CONFIG_FILE']?.startsWith(`${m.mountPath}/`),
  );
  expect(mount).toBeDefined();
  const volume = deployment().template.spec.volumes.find((v) => v.name === mount!.name);
  expect(volume?.configMap?.name).toBe(configMap.metadata.name);
  const file = path.basename(env['CONFIG_FILE']!);
  const text = configMap.data?.[file];
  expect(text).toBeDefined();
  writeFileSync(path.join(dir, file), text!);
  return loadConfig({ ...env, CONFIG_FILE: path.join(dir, file) }, dir);
}

describeWithKubectl('deploy/kubernetes', () => {
  it('renders objects that are each valid against the Kubernetes schemas', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'PersistentVolumeClaim',
      'Service',
    ]);
    for (const object of objects) {
      const model = MODELS[`${object.apiVersion} ${object.kind}`];
      expect(model).toBeDefined();
      expect(() => model!(object).validate()).not.toThrow();
    }
  });

  it('names only real settings in env, and its config file and env make a valid config', () => {
    const names = (watcher().env ?? []).map((e) => e.name);
    const known = new Set([...Object.keys(ENV_SETTINGS), 'CONFIG_FILE']);
    expect(names.filter((name) => !known.has(name))).toEqual([]);
    // The secrets come from a Secret, never as plain values.
    for (const name of ['DATAFRAMER_API_KEY', 'WEBHOOK_SECRET']) {
      const variable = watcher().env?.find((e) => e.name === name);
      expect(variable?.value).toBeUndefined();
      expect(variable?.valueFrom?.secretKeyRef?.key).toBe(name);
    }
    const config = podConfig();
    expect(config.stateDir).toBe('/data');
  });

  it('runs one pod at a time on a persistent /data, Recreate so two never share the volume', () => {
    const spec = deployment();
    expect(spec.replicas).toBe(1);
    expect(spec.strategy?.type).toBe('Recreate');
    expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    const state = watcher().volumeMounts?.find((m) => m.mountPath === podConfig().stateDir);
    const volume = spec.template.spec.volumes.find((v) => v.name === state?.name);
    expect(volume?.persistentVolumeClaim?.claimName).toBe(
      one('PersistentVolumeClaim').metadata.name,
    );
  });

  it('gives the pod more grace than SHUTDOWN_GRACE_MS (plus the 1 s exit backstop)', () => {
    const config = podConfig();
    const graceSeconds = deployment().template.spec.terminationGracePeriodSeconds ?? 30;
    expect(graceSeconds * 1000).toBeGreaterThan(config.shutdownGraceMs + 1_000);
    // And the grace itself outlasts every webhook timeout (loadConfig refuses it otherwise).
    for (const receiver of config.receivers) {
      expect(receiver.timeoutMs ?? config.webhookTimeoutMs).toBeLessThan(config.shutdownGraceMs);
    }
  });

  describe('probes and scraping, against the real HTTP server', () => {
    let port = 0;
    let close: () => Promise<void> = async () => {};
    beforeAll(async () => {
      const server = await startHttpServer(
        {
          readiness: () => ({ ready: true, reasons: [] }),
          metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: '' }),
        },
        '127.0.0.1',
        0,
      );
      port = server.port;
      close = server.close;
    });
    afterAll(() => close());

    const answers = async (urlPath: string) =>
      (await fetch(`http://127.0.0.1:${port}${urlPath}`)).status;

    it('probes /healthz (liveness) and /readyz (readiness) on the port the watcher listens on', async () => {
      const config = podConfig();
      const { livenessProbe, readinessProbe } = watcher();
      expect(livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(portNumber(livenessProbe?.httpGet?.port)).toBe(config.httpPort);
      expect(portNumber(readinessProbe?.httpGet?.port)).toBe(config.httpPort);
      expect(await answers(livenessProbe!.httpGet!.path)).toBe(200);
      expect(await answers(readinessProbe!.httpGet!.path)).toBe(200);
      expect(await answers('/nothing-here')).toBe(404);
    });

    it('has a Service on 8080 with Prometheus scrape annotations for /metrics', async () => {
      const service = one('Service');
      const annotations = service.metadata.annotations ?? {};
      const { ports, selector } = service.spec as {
        ports: { port: number; targetPort: number | string }[];
        selector: Record<string, string>;
      };
      expect(ports).toHaveLength(1);
      expect(ports[0]!.port).toBe(8080);
      expect(portNumber(ports[0]!.targetPort)).toBe(podConfig().httpPort);
      expect(deployment().template.metadata.labels).toMatchObject(selector);
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(Number(annotations['prometheus.io/port'])).toBe(podConfig().httpPort);
      expect(await answers(annotations['prometheus.io/path'] ?? '/metrics')).toBe(200);
    });
  });

  it('meets the restricted Pod Security Standard and sets resources', () => {
    const pod = deployment().template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const container = watcher();
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext?.['privileged']).not.toBe(true);
    expect(pod.securityContext?.['runAsUser']).not.toBe(0);
    expect(container.resources?.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });
    expect(container.resources?.limits?.['memory']).toEqual(expect.any(String));
  });
});
