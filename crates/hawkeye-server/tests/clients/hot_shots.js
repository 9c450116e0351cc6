// hot-shots (npm), unmodified, over the Unix datagram socket: the test
// (real_clients.rs) runs it with node and reads every count back.
const StatsD = require('hot-shots');

const [path, n] = [process.argv[2], Number(process.argv[3])];
let failed = false;
const client = new StatsD({
  protocol: 'uds',
  path,
  // Lines packed into datagrams of up to 8 KiB, as one would set it up
  // for a busy application.
  maxBufferSize: 8192,
  bufferFlushInterval: 20,
  globalTags: { service: 'node-app' },
  errorHandler: (error) => {
    console.error('hot-shots error:', error);
    failed = true;
  },
});
for (let i = 0; i < n; i++) {
  client.increment('node.hs.hits', 1, ['team:a']);
}
client.gauge('node.hs.temp', 21.5);
client.timing('node.hs.latency', 12);
client.histogram('node.hs.size', 5);
client.distribution('node.hs.size', 7);
client.set('node.hs.users', 'u1');
client.set('node.hs.users', 'u2');
client.event('Deploy', 'rolled out', { alert_type: 'success' }, ['env:prod']);
client.check('node.hs.check', client.CHECKS.CRITICAL, { message: 'down' }, ['env:prod']);
client.close((error) => {
  if (error || failed) {
    console.error('close:', error);
    process.exit(1);
  }
  console.log('sent');
});
