// Redis servers a test starts for itself, beside the stack's own: a server
// with ACL users and a unix socket, or a primary, a replica and three
// sentinels (docs/redis.md, "Production").  Each runs from its own folder
// and is stopped, or killed, by its pid.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually, sleep } from './lib.mjs';

const execFileP = promisify(execFile);

// Starts `redis-server` with the lines given (redis.conf syntax) on
// 127.0.0.1:port, and its unix socket at <dir>/redis.sock.  `sentinel`
// runs it as a sentinel.  Returns {port, dir, sock, pid, cli(...args),
// kill(signal), stop()}; cli runs redis-cli with `auth` ([user, password])
// when given.
export async function startRedis(name, port, lines = [],
    { sentinel = false, auth = null } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `th-it-${name}-`));
    // nginx's workers (nobody, when the tests run as root) reach the socket
    fs.chmodSync(dir, 0o755);
    const sock = path.join(dir, 'redis.sock');
    const conf = path.join(dir, 'redis.conf');
    fs.writeFileSync(conf, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `logfile ${path.join(dir, 'redis.log')}`,
        ...(sentinel ? [] : [
            'save ""',
            'appendonly no',
            `unixsocket ${sock}`,
            'unixsocketperm 777',
        ]),
        ...lines,
        '',
    ].join('\n'));
    const args = [conf];
    if (sentinel) {
        args.push('--sentinel');
    }
    const child = spawn('redis-server', args,
        { stdio: 'ignore', detached: true });
    child.unref();
    const log = path.join(dir, 'redis.log');
    const up = await eventually(() => fs.existsSync(log)
        && /Ready to accept connections|Sentinel ID is/.test(
            fs.readFileSync(log, 'utf8')), 10000, 50);
    if (!up) {
        throw new Error(`${name} did not start on ${port}: ${
            fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : 'no log'}`);
    }

    const alive = () => {
        try {
            process.kill(child.pid, 0);
            return true;
        } catch {
            return false;
        }
    };
    async function cli(...cmd) {
        const a = ['-h', '127.0.0.1', '-p', String(port), '--raw',
            '--no-auth-warning'];
        if (auth) {
            a.push('--user', auth[0], '--pass', auth[1]);
        }
        const { stdout } = await execFileP('redis-cli', [...a, ...cmd],
            { timeout: 5000 });
        return stdout.replace(/\n$/, '');
    }
    async function stop() {
        if (alive()) {
            process.kill(child.pid, 'SIGTERM');
            for (let i = 0; i < 50 && alive(); i++) {
                await sleep(100);
            }
            if (alive()) {
                process.kill(child.pid, 'SIGKILL');
            }
        }
    }
    async function remove() {
        await stop();
        fs.rmSync(dir, { recursive: true, force: true });
    }
    return { name, port, dir, sock, conf, log, pid: child.pid, cli, alive,
        kill: (signal = 'SIGKILL') => process.kill(child.pid, signal),
        stop, remove };
}
