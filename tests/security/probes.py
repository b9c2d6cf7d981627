"""JavaScript that hostile builds run inside the sandbox to probe it; results go to JSON."""

from __future__ import annotations

import json
import socket

# probe(targets) → {"host:port": "OPEN" | error code}; dns(name) → address or error code.
PROBE_LIB = r"""
const net = require("net"), dns = require("dns"), http = require("http"), fs = require("fs");
function tcp(host, port) {
  return new Promise((done) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.on("connect", () => { s.destroy(); done("OPEN"); });
    s.on("timeout", () => { s.destroy(); done("TIMEOUT"); });
    s.on("error", (e) => done(e.code || String(e)));
  });
}
function lookup(name) {
  return new Promise((done) => dns.lookup(name, (e, a) => done(e ? e.code : a)));
}
function viaProxy(proxyHost, proxyPort, target) {
  return new Promise((done) => {
    const q = http.request({ host: proxyHost, port: proxyPort, method: "CONNECT", path: target,
                             timeout: 5000 });
    q.on("connect", (res, sock) => { sock.destroy(); done(res.statusCode); });
    q.on("response", (res) => done(res.statusCode));
    q.on("timeout", () => { q.destroy(); done("TIMEOUT"); });
    q.on("error", (e) => done(e.code || String(e)));
    q.end();
  });
}
async function probeAll(targets, names) {
  const out = { tcp: {}, dns: {} };
  for (const [h, p] of targets) out.tcp[h + ":" + p] = await tcp(h, p);
  for (const n of names) out.dns[n] = await lookup(n);
  return out;
}
"""


def host_address() -> str:
    """This host's address on its default route (what a container would aim at)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.80", 443))  # no packet is sent for UDP connect
        return str(probe.getsockname()[0])


def egress_targets(api_port: int) -> list[tuple[str, int]]:
    """Everything a build must not reach: registry, proxy, host services, metadata."""
    host = host_address()
    return [
        ("203.0.113.80", 443),  # the registry's address, directly
        ("1.1.1.1", 443),
        ("172.30.213.1", 3128),  # Kiln's egress proxy
        ("172.17.0.1", 6379),  # Redis through the default bridge's gateway
        ("172.17.0.1", api_port),  # the API through the default bridge's gateway
        (host, 6379),
        (host, api_port),
        (host, 22),
        ("169.254.169.254", 80),  # cloud metadata
        ("127.0.0.1", 6379),
    ]


def probe_script(api_port: int, out: str, then: str = "") -> str:
    """A script that probes every egress target, writes the results to ``out``, runs ``then``."""
    targets = json.dumps(egress_targets(api_port))
    return (
        PROBE_LIB
        + f"probeAll({targets}, ['registry.npmjs.org', 'example.com']).then((r) => {{\n"
        + f"  fs.writeFileSync({json.dumps(out)}, JSON.stringify(r));\n{then}\n}});\n"
    )
