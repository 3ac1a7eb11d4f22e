// The quiche peer's client, run by quicsim/peers/clients.py under Node >= 20 with
// @matrixai/quic from the folder given by --modules: connects from 127.0.0.1 to a quicsim
// listener on 127.0.0.1 under ALPN "quicsim", verifying its certificate with the project's
// test CA, and opens one bidirectional stream per action of the menu, in order. One JSON
// line per thing it did or saw; {"event": "done"} and exit status 0 once every stream is over.
import * as nodeCrypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// the application error codes of the abortive actions (the server sees them)
const CODES = { 'stop-sending': 0x52, reset: 0x53, 'close-connection': 0x54 };
const ACTIONS = ['echo', 'stop-sending', 'reset', 'close-connection'];

function say(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' }, ca: { type: 'string' }, modules: { type: 'string' },
    alpn: { type: 'string', default: 'quicsim' }, 'server-name': { type: 'string', default: 'localhost' },
    action: { type: 'string', default: 'echo' }, size: { type: 'string', default: '1000' },
    timeout: { type: 'string', default: '30' },
  },
});
const menu = args.action.split(',');
const bad = menu.filter((a) => !ACTIONS.includes(a));
if (bad.length) {
  say({ error: `unknown action '${bad[0]}' (one of ${ACTIONS.join(', ')})` });
  process.exit(2);
}
const giveUp = setTimeout(() => { say({ error: `not over within ${args.timeout} s` }); process.exit(4); },
  Number(args.timeout) * 1000);
process.on('SIGTERM', () => { say({ event: 'stopped' }); process.exit(0); });
process.on('SIGINT', () => { say({ event: 'stopped' }); process.exit(0); });
process.stdin.on('end', () => { say({ event: 'stopped' }); process.exit(0); });  // the launcher is gone
process.stdin.resume();
say({ event: 'started', pid: process.pid });  // the launcher's stop by pid is heard from here on

const quic = await import(pathToFileURL(path.join(args.modules, 'node_modules/@matrixai/quic/dist/index.js')).href);
const logger = await import(pathToFileURL(path.join(args.modules, 'node_modules/@matrixai/logger/dist/index.js')).href);
const { QUICClient } = quic;
const ops = { async randomBytes(data) { nodeCrypto.getRandomValues(new Uint8Array(data)); } };
const size = Number(args.size);
const payload = Buffer.alloc(size, 0).map((_, i) => i % 256);

let client;
try {
  client = await QUICClient.createQUICClient({
    host: '127.0.0.1', port: Number(args.port), serverName: args['server-name'], localHost: '127.0.0.1',
    crypto: { ops },
    config: { applicationProtos: [args.alpn], verifyPeer: true, ca: fs.readFileSync(args.ca, 'utf8') },
    // a number given to cancel()/abort() is the code on the wire, and back
    reasonToCode: (type, reason) => (typeof reason === 'number' ? reason : 0),
    codeToReason: (type, code) => Number(code),
    logger: new logger.default('quiche-peer-client', logger.LogLevel.WARN),
  });
} catch (err) {
  say({ error: `ConnectionError: ${err && err.message ? err.message : err}` });
  process.exit(5);
}
if (client.localHost !== '127.0.0.1') {
  say({ error: 'the client is not bound to 127.0.0.1', bound: [client.localHost, client.localPort] });
  process.exit(3);
}
say({ event: 'connected', bound: [client.localHost, client.localPort] });
const conn = client.connection;
let closed = false;

async function runStream(action) {
  const stream = conn.newStream('bidi');
  const id = Number(stream.streamId);
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  await writer.write(payload);
  if (action === 'echo') await writer.close();
  say({ event: 'sent', stream: id, bytes: size, action });
  let received = 0;
  let acted = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        say({ event: 'fin-received', stream: id, bytes: received, action });
        return;
      }
      received += value.length;
      if (acted || action === 'echo' || !value.length) continue;
      acted = true;
      if (action === 'stop-sending') {
        await reader.cancel(CODES[action]);
        say({ event: 'stop-sending', stream: id, code: CODES[action] });
        await writer.close();  // FIN on our direction: a graceful close waits for every stream
        return;
      } else if (action === 'reset') {
        // our direction only: the stream is over when the server ends its own
        await writer.abort(CODES[action]);
        say({ event: 'reset', stream: id, code: CODES[action] });
      } else if (action === 'close-connection') {
        say({ event: 'close-connection', stream: id, code: CODES[action] });
        closed = true;
        await conn.stop({ isApp: true, errorCode: CODES[action], force: true });
        return;
      }
    }
  } catch (err) {
    if (closed) return;
    // a peer's RESET_STREAM rejects the read with codeToReason's value: the code itself
    if (typeof err === 'number') say({ event: 'reset-received', stream: id, code: err });
    else say({ event: 'stream-error', stream: id, error: String(err && err.message ? err.message : err) });
  }
}

const streams = [];
for (const action of menu) {
  streams.push(runStream(action));
  await new Promise((resolve) => setImmediate(resolve));  // opened in menu order
}
await Promise.all(streams);
if (!closed) await client.destroy({ isApp: true, errorCode: 0, force: false }).catch(() => {});
else await client.destroy({ force: true }).catch(() => {});
clearTimeout(giveUp);
say({ event: 'done' });
process.exit(0);
