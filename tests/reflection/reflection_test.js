// Server reflection with a real, independent client: @grpc/grpc-js and
// grpc-js-reflection-client (exact versions in package-lock.json, installed by
// `make deps` with `npm ci`, outside Bazel). It starts spawnd, lists the
// services, resolves spawnd.v1.ProcessService with its imports through
// reflection alone (no .proto file) and calls StartProcess dynamically.
//
// node_modules is not a Bazel input: node resolves modules from this file's
// real path (the runfiles symlink points into the source tree), where
// `npm ci --prefix tests/reflection` put them.
'use strict';

const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

function requireOrExplain(name) {
  try {
    return require(name);
  } catch (e) {
    console.error(`cannot load ${name}: ${e.message}\n` +
                  'Install the test clients with `make deps` (npm ci --prefix tests/reflection).');
    process.exit(1);
  }
}

const grpc = requireOrExplain('@grpc/grpc-js');
const { GrpcReflection } = requireOrExplain('grpc-js-reflection-client');

const SANITIZED = !!(process.env.SPAWND_SANITIZED && process.env.SPAWND_SANITIZED !== '0') ||
                  'ASAN_OPTIONS' in process.env;
const SLOW = SANITIZED ? 3 : 1;
const DEADLINE_MS = 60000 * SLOW;

function spawndBinary() {
  if (process.env.SPAWND_BIN) return process.env.SPAWND_BIN;
  const roots = [];
  if (process.env.TEST_SRCDIR) {
    roots.push(path.join(process.env.TEST_SRCDIR, process.env.TEST_WORKSPACE || 'spawnd'));
  }
  const repo = path.resolve(path.dirname(fs.realpathSync(__filename)), '..', '..');
  roots.push(path.join(repo, 'bazel-bin'));
  for (const r of roots) {
    const p = path.join(r, 'service', 'front', 'spawnd');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('spawnd binary not found under ' + roots.join(', '));
}

// Starts spawnd on a free port; resolves {proc, address} once it logs "serving".
function startSpawnd() {
  const tmp = fs.mkdtempSync(path.join(process.env.TEST_TMPDIR || os.tmpdir(), 'spawnd-refl-'));
  const config = path.join(tmp, 'spawnd.yaml');
  fs.writeFileSync(config, [
    'listen: ["127.0.0.1:0"]',
    'log: {format: json, level: info}',
    'targets:',
    '  echo: {function: builtin:echo}',
    '',
  ].join('\n'));
  const env = Object.assign({}, process.env);
  delete env.SPAWND_LISTEN;
  const proc = childProcess.spawn(spawndBinary(), ['--config', config],
                                  { stdio: ['ignore', 'inherit', 'pipe'], env, cwd: tmp });
  const lines = [];
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stderr });
    rl.on('line', (line) => {
      lines.push(line);
      process.stderr.write('[spawnd] ' + line + '\n');
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'serving' && rec.address && !rec.address.startsWith('unix:')) {
          resolve({ proc, address: rec.address });
        }
      } catch (e) { /* not a JSON line */ }
    });
    proc.on('exit', (code) => reject(new Error(`spawnd exited (${code}) before serving`)));
  });
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000 * SLOW);
    client[method](request, { deadline }, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

async function main() {
  const { proc, address } = await startSpawnd();
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  try {
    for (const version of ['v1', 'v1alpha']) {
      const refl = new GrpcReflection(address, grpc.credentials.createInsecure(), {}, version);
      const services = await refl.listServices();
      for (const want of ['spawnd.v1.ProcessService', 'grpc.health.v1.Health',
                          'grpc.reflection.v1.ServerReflection',
                          'grpc.reflection.v1alpha.ServerReflection']) {
        assert.ok(services.includes(want), `${version} listServices: ${want} missing from ${services}`);
      }
      console.log(`ok: ${version} listServices -> ${services.join(', ')}`);
    }

    const refl = new GrpcReflection(address, grpc.credentials.createInsecure());
    const methods = (await refl.listMethods('spawnd.v1.ProcessService')).map((m) => m.name);
    for (const m of ['StartProcess', 'Destroy', 'Watch', 'GetProcess', 'ListProcesses', 'ListTargets', 'Run']) {
      assert.ok(methods.includes(m), `listMethods: ${m} missing from ${methods}`);
    }
    console.log('ok: listMethods ->', methods.join(', '));

    // The service's file and its imports, resolved through reflection only.
    const descriptor = await refl.getDescriptorBySymbol('spawnd.v1.ProcessService');
    const root = descriptor.getProtobufJsRoot();
    for (const type of ['google.protobuf.Duration', 'google.protobuf.Timestamp',
                        'spawnd.v1.StartProcessRequest', 'spawnd.v1.Process']) {
      assert.ok(root.lookupType(type), `${type} not resolved`);
    }
    assert.ok(root.lookupType('spawnd.v1.StartProcessRequest').fields.timeout.resolvedType,
              'StartProcessRequest.timeout resolves to google.protobuf.Duration');
    console.log('ok: spawnd.v1.ProcessService resolved with duration.proto and timestamp.proto');

    // A dynamic StartProcess (with a Duration), then GetProcess until it ends.
    const pkg = descriptor.getPackageObject({ keepCase: true, longs: String, enums: String, defaults: true });
    const client = new pkg.spawnd.v1.ProcessService(address, grpc.credentials.createInsecure());
    const started = await call(client, 'StartProcess', {
      target: 'echo', input: Buffer.from('hello through reflection'), timeout: { seconds: 30 },
    });
    assert.strictEqual(started.process.target, 'echo');
    assert.ok(started.process.id, 'a process id');
    let p = started.process;
    const end = Date.now() + 10000 * SLOW;
    while (!/SUCCEEDED|FAILED|CANCELED/.test(p.state)) {
      assert.ok(Date.now() < end, `echo did not end: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 20));
      p = await call(client, 'GetProcess', { id: started.process.id });
    }
    assert.ok(p.state.endsWith('SUCCEEDED'), `echo ended ${p.state}: ${JSON.stringify(p.error)}`);
    assert.strictEqual(Buffer.from(p.result).toString(), 'hello through reflection');
    console.log('ok: StartProcess(echo) through reflection ->', p.state, JSON.stringify(Buffer.from(p.result).toString()));

    // Run: one call, the events from PENDING (sequence 1) to the terminal one.
    const events = await new Promise((resolve, reject) => {
      const got = [];
      const stream = client.Run({ start: { target: 'echo', args: ['run', 'by', 'reflection'] } },
                                { deadline: Date.now() + 10000 * SLOW });
      stream.on('data', (ev) => got.push(ev));
      stream.on('error', reject);
      stream.on('end', () => resolve(got));
    });
    assert.ok(events.length >= 3, `Run sent ${events.length} events: ${JSON.stringify(events)}`);
    assert.strictEqual(events[0].sequence, '1');
    assert.ok(events[0].type.endsWith('STATE_CHANGED'), `first event ${events[0].type}`);
    assert.ok(events[0].process.state.endsWith('PENDING'));
    const last = events[events.length - 1].process;
    assert.ok(last.state.endsWith('SUCCEEDED'), `Run ended ${last.state}`);
    assert.strictEqual(Buffer.from(last.result).toString(), 'run by reflection');
    console.log('ok: Run(echo) through reflection ->', events.map((e) => e.process.state).join(' '));
    client.close();
  } finally {
    proc.kill('SIGTERM');
  }
  const { code, sig } = await exited;
  assert.strictEqual(code, 0, `spawnd exited with ${code} (signal ${sig}) after SIGTERM`);
  console.log('ok: spawnd exited 0');
}

const timer = setTimeout(() => { console.error(`FAIL: no result within ${DEADLINE_MS} ms`); process.exit(1); },
                         DEADLINE_MS);
main().then(() => { clearTimeout(timer); process.exit(0); },
            (e) => { console.error('FAIL:', e && e.stack ? e.stack : e); process.exit(1); });
