// Loaded with `node -r` before SAP CAP starts, for the benchmark only:
// - CAP listens on every interface (`app.listen(port)`); this binds it to 127.0.0.1 on a free
//   port instead and prints the address for the benchmark to read.
// - better-sqlite3 is built with WAL synchronous=NORMAL (no fsync per commit); this sets
//   synchronous=FULL on every connection, so that an acknowledged PATCH is durable, as in parley.
'use strict'
const net = require('net')
const Module = require('module')

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const callback = args.find((a) => typeof a === 'function')
  this.once('listening', () => {
    const { address, port } = this.address()
    console.log(`peer listening on http://${address}:${port}`)
  })
  return callback ? listen.call(this, 0, '127.0.0.1', callback) : listen.call(this, 0, '127.0.0.1')
}

const load = Module._load
let durable
Module._load = function (request, ...rest) {
  const loaded = load.call(this, request, ...rest)
  if (request !== 'better-sqlite3') return loaded
  if (!durable) {
    durable = function Database(...args) {
      const db = new loaded(...args)
      db.pragma('synchronous = FULL')
      return db
    }
    Object.setPrototypeOf(durable, loaded)
    durable.prototype = loaded.prototype
  }
  return durable
}
