// The quiche peer's server, run by quicsim/peers/quiche.py under Node >= 20 with
// @matrixai/quic (quiche's binding) from the folder given by --modules: raw streams under
// ALPN "quicsim" with quicsim's test certificate, each client stream answered by the
// behaviour its index picks from the menu. It prints one JSON line {"listening": ...} once
// its socket is bound to 127.0.0.1, then one JSON line per action it took.
import * as nodeCrypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// the application error codes of the abortive behaviours (the client sees them)
const STOP_SENDING_CODE = 0x42;
const RESET_CODE = 0x43;
const CLOSE_CODE = 0x44;
const BEHAVIOURS = ['echo', 'stop-sending', 'reset', 'close-connection', 'answer-after-fin'];

function say(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string' }, key: { type: 'string' }, modules: { type: 'string' },
    alpn: { type: 'string', default: 'quicsim' }, behaviour: { type: 'string', default: 'echo' },
  },
});
const menu = args.behaviour.split(',');
const bad = menu.filter((b) => !BEHAVIOURS.includes(b));
if (bad.length) {
  say({ error: `unknown behaviour '${bad[0]}' (one of ${BEHAVIOURS.join(', ')})` });
  process.exit(2);
}
const quic = await import(pathToFileURL(path.join(args.modules, 'node_modules/@matrixai/quic/dist/index.js')).href);
const logger = await import(pathToFileURL(path.join(args.modules, 'node_modules/@matrixai/logger/dist/index.js')).href);
const { QUICServer, events } = quic;

// Retry and stateless-reset tokens: HMAC-SHA256 under a key of this run
const ops = {
  async sign(key, data) {
    const mac = nodeCrypto.createHmac('sha256', Buffer.from(key)).update(Buffer.from(data)).digest();
    return mac.buffer.slice(mac.byteOffset, mac.byteOffset + mac.byteLength);
  },
  async verify(key, data, sig) {
    const mac = nodeCrypto.createHmac('sha256', Buffer.from(key)).update(Buffer.from(data)).digest();
    const given = Buffer.from(sig);
    return given.length === mac.length && nodeCrypto.timingSafeEqual(mac, given);
  },
};
const key = nodeCrypto.randomBytes(32);
const server = new QUICServer({
  crypto: { key: key.buffer.slice(key.byteOffset, key.byteOffset + 32), ops },
  config: {
    key: fs.readFileSync(args.key, 'utf8'), cert: fs.readFileSync(args.cert, 'utf8'),
    applicationProtos: [args.alpn], verifyPeer: false,
  },
  // a number given to cancel()/abort() is the code on the wire
  reasonToCode: (type, reason) => (typeof reason === 'number' ? reason : 0),
  logger: new logger.default('quiche-peer', logger.LogLevel.WARN),
});

function behaviourOf(streamId) {
  return menu[Math.min(Math.floor(streamId / 4), menu.length - 1)];
}

async function serveStream(conn, stream) {
  const id = Number(stream.streamId);
  const behaviour = behaviourOf(id);
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  const held = [];
  let first = true;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (behaviour === 'echo') {
        await writer.write(value);
      } else if (behaviour === 'answer-after-fin') {
        held.push(Buffer.from(value));
      } else if (first && behaviour === 'stop-sending') {
        // one call each: STOP_SENDING on the client's direction, FIN on ours
        await reader.cancel(STOP_SENDING_CODE);
        await writer.close();
        say({ event: 'stop-sending', stream: id, code: STOP_SENDING_CODE });
        return;
      } else if (first && behaviour === 'reset') {
        // RESET_STREAM on our direction; the client's keeps flowing and is read to the end
        await writer.abort(RESET_CODE);
        say({ event: 'reset', stream: id, code: RESET_CODE });
      } else if (first && behaviour === 'close-connection') {
        say({ event: 'close-connection', stream: id, code: CLOSE_CODE });
        await conn.stop({ isApp: true, errorCode: CLOSE_CODE, force: true });
        return;
      }
      first = false;
    }
    say({ event: 'fin-received', stream: id, behaviour });
    if (behaviour === 'answer-after-fin') await writer.write(Buffer.concat(held));
    if (behaviour !== 'reset') await writer.close();
  } catch (err) {
    say({ event: 'stream-error', stream: id, error: String(err && err.message ? err.message : err) });
  }
}

server.addEventListener(events.EventQUICServerConnection.name, (evt) => {
  const conn = evt.detail;
  const peer = [conn.remoteHost, conn.remotePort];
  say({ event: 'connected', peer });
  if (peer[0] !== '127.0.0.1') {  // only loopback clients are answered
    say({ event: 'refused', peer });
    conn.stop({ isApp: true, errorCode: CLOSE_CODE, force: true }).catch(() => {});
    return;
  }
  conn.addEventListener(events.EventQUICConnectionStream.name, (e) => { serveStream(conn, e.detail); });
  conn.addEventListener(events.EventQUICConnectionError.name, (e) => {
    say({ event: 'terminated', error: String(e.detail && e.detail.message) });
  });
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop({ force: true }).catch(() => {});
  say({ event: 'stopped' });
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);  // the launcher holds our stdin open: its end means it is gone
process.stdin.resume();

await server.start({ host: '127.0.0.1', port: 0 });
if (server.host !== '127.0.0.1') {
  say({ error: 'the server is not bound to 127.0.0.1', bound: [{ host: server.host, port: server.port }] });
  await server.stop({ force: true }).catch(() => {});
  process.exit(3);
}
say({
  listening: {
    host: '127.0.0.1', port: server.port, pid: process.pid, behaviours: menu,
    bound: [{ host: server.host, port: server.port, family: 'ipv4' }],
  },
});
