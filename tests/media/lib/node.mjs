// A further Janus node for the media tests that need more than the stack's
// one (failover): the stack's own rendered configuration (same plugins,
// keys, Redis and ICE settings) copied into a folder of its own under
// TH_RUN, with its own HTTP and WebSocket ports and its own node_id.  The
// test starts it, may kill it by its pid, and stops it with t.after.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { waitFor } from './wait.mjs';

function run() {
  const dir = process.env.TH_RUN;
  if (!dir) {
    throw new Error('TH_RUN is not set: run with scripts/media-tests.sh');
  }
  return dir;
}

/**
 * Starts Janus as node nodeId on httpPort (HTTP) and wsPort (WebSocket).
 * Resolves with { nodeId, url, pid, dir, alive(), kill(signal), stop() }
 * once it answers /janus/info.
 */
export async function startJanusNode(t, { nodeId, httpPort, wsPort }) {
  const stackDir = path.join(run(), 'janus');
  const dir = path.join(run(), `janus-${nodeId}`);
  const etc = path.join(dir, 'etc');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(etc, { recursive: true });

  const edits = {
    'janus.jcfg': (s) => s.split(`${stackDir}/etc`).join(etc),
    'janus.transport.http.jcfg': (s) => s.replace(/^(\s*port\s*=\s*)\d+/m, `$1${httpPort}`),
    'janus.transport.websockets.jcfg': (s) => s.replace(/^(\s*ws_port\s*=\s*)\d+/m, `$1${wsPort}`),
    'janus.plugin.telehealth.jcfg': (s) => s.replace(/^(\s*node_id\s*=\s*)"[^"]*"/m, `$1"${nodeId}"`),
  };
  for (const [name, edit] of Object.entries(edits)) {
    const text = edit(fs.readFileSync(path.join(stackDir, 'etc', name), 'utf8'));
    fs.writeFileSync(path.join(etc, name), text);
  }

  const out = fs.openSync(path.join(dir, 'janus.out'), 'w');
  const child = spawn('janus', ['-F', etc, '-o', '-N', '-L', path.join(dir, 'janus.log')], {
    stdio: ['ignore', out, out],
    detached: true,
  });
  fs.closeSync(out);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let gone = false;
  exited.then(() => { gone = true; });

  const url = `http://127.0.0.1:${httpPort}/janus`;
  const node = {
    nodeId,
    url,
    pid: child.pid,
    dir,
    alive: () => !gone,
    kill(signal = 'SIGKILL') {
      if (!gone) {
        process.kill(child.pid, signal);
      }
      return exited;
    },
    async stop() {
      if (gone) {
        return;
      }
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => { if (!gone) process.kill(child.pid, 'SIGKILL'); }, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  t.after(() => node.stop());

  await waitFor(async () => {
    if (gone) {
      throw new Error(`Janus ${nodeId} exited at start (see ${dir}/janus.log)`);
    }
    try {
      const res = await fetch(`${url}/info`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  }, { timeoutMs: 20_000, what: `Janus ${nodeId} to answer on ${url}` });

  return node;
}
