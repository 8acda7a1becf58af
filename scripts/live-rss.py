#!/usr/bin/env python3
"""Measures the daemon's RSS with many idle live-event (SSE) connections.

Not a test: prints RSS before, with N idle SSE connections open, and some seconds after
they close. Usage:

    scripts/live-rss.py --bin target/debug/switchboard [--n 2000] [--env MALLOC_ARENA_MAX=2]

It writes a throw-away configuration (SQLite in a temporary directory, max_connections
above N), creates a token, starts `serve`, and reads VmRSS from /proc.
"""
import argparse, asyncio, os, resource, socket, subprocess, sys, tempfile, time


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss(pid):
    """VmRSS, and its anonymous part (the heap: what the connections cost; the rest is
    mostly the binary's own pages)."""
    return f"{rss_mb(pid):.1f} MB (anonymous {rss_mb(pid, 'RssAnon'):.1f} MB)"


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def metric(port, name):
    import urllib.request
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line.split()[-1]
    return "?"


def write_events(db, n):
    """Appends n events of tenant acme, as the store would (either schema version)."""
    import sqlite3, json
    c = sqlite3.connect(db, timeout=30)
    payload = json.dumps({"conversation_id": "0" * 36, "message_id": "1" * 36, "channel_id": "acme-sms"})
    now = int(time.time() * 1000)
    per_tenant = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'tenant_event_counters'").fetchone()
    with c:
        if per_tenant:
            c.execute("INSERT INTO tenant_event_counters (tenant_id, last_seq) VALUES ('acme', 0) ON CONFLICT DO NOTHING")
            (head,) = c.execute("UPDATE tenant_event_counters SET last_seq = last_seq + ? WHERE tenant_id = 'acme' RETURNING last_seq", (n,)).fetchone()
            c.executemany("INSERT INTO events (tenant_id, seq, type, payload, created_at) VALUES ('acme', ?, 'message.created', ?, ?)",
                          [(head - n + i + 1, payload, now) for i in range(n)])
        else:
            c.executemany("INSERT INTO events (tenant_id, type, payload, created_at) VALUES ('acme', 'message.created', ?, ?)",
                          [(payload, now)] * n)
    c.close()


async def open_sse(port, token, conns, since):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    q = "" if since is None else f"?since={since}"
    w.write(f"GET /api/v1/events{q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    conns.append((r, w))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--backlog", type=int, default=0, help="events written before the clients connect")
    ap.add_argument("--burst", type=int, default=0, help="events written while they are connected")
    ap.add_argument("--since", default=None, help="the clients' ?since=")
    ap.add_argument("--trim", action="store_true", help="then call malloc_trim(0) in the daemon (gdb)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = tempfile.mkdtemp(prefix="live-rss-")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    cfg = os.path.join(d, "config.toml")
    with open(cfg, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
max_connections = {a.n + 100}
idle_timeout_secs = 600
[database]
url = "sqlite://{d}/sb.db"
[blobs]
path = "{d}/blobs"
[events]
heartbeat_secs = 30
[[tenants]]
id = "acme"
name = "Acme"
""")
    env = dict(os.environ, RUST_LOG="error")
    for kv in a.env:
        k, v = kv.split("=", 1); env[k] = v
    token = subprocess.check_output([a.bin, "--config", cfg, "token", "create", "--tenant", "acme",
                                     "--role", "agent", "--name", "rss"], env=env).decode().strip()
    if a.backlog:
        write_events(f"{d}/sb.db", a.backlog)
    p = subprocess.Popen([a.bin, "--config", cfg, "serve"], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close(); break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        print(f"before: {rss(p.pid)}, {threads(p.pid)} threads")
        conns = []
        for i in range(0, a.n, 100):
            await asyncio.gather(*(open_sse(port, token, conns, a.since) for _ in range(min(100, a.n - i))))
        time.sleep(2)
        if a.burst:
            for _ in range(a.burst):
                write_events(f"{d}/sb.db", 1)
                time.sleep(0.25)
            time.sleep(3)
        print(f"with {len(conns)} idle SSE connections: {rss(p.pid)}, {threads(p.pid)} threads, "
              f"switchboard_live_connections={metric(port, 'switchboard_live_connections')}, "
              f"switchboard_live_buffered_bytes={metric(port, 'switchboard_live_buffered_bytes')}")
        for r, w in conns:
            w.close()
        conns.clear()
        await asyncio.sleep(a.settle)
        print(f"{a.settle:.0f}s after they closed: {rss(p.pid)}, {threads(p.pid)} threads, "
              f"switchboard_live_connections={metric(port, 'switchboard_live_connections')}")
        if a.trim:
            subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "call (int) malloc_trim(0)"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"after malloc_trim(0): {rss(p.pid)}")
    finally:
        p.terminate(); p.wait()


asyncio.run(main())
