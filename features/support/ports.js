// A port on 127.0.0.1 for a server that a scenario or a check starts itself, as src/testing's
// free_port(): random in 10000-16999, below the kernel's ephemeral range (where outgoing
// connections take their source ports, so such a port can be taken between the pick and the
// server's bind) and below the ranges ./dev gives its stacks; checked by listening on it once.
//   import { freePort } from '../support/ports.js';
//   const port = await freePort();
import net from 'node:net';

export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 7000);
    if (await canListen(port)) return port;
  }
  throw new Error('freePort: no port of 10000-16999 is free on 127.0.0.1');
}

function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
