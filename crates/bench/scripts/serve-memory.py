#!/usr/bin/env python3
"""Resident memory of `coffer serve` alone (SQLite) against `coffer sim` in its own process
(docs/benchmarks.md, "Memory bounded in bytes"): N customers x 10 accounts, each asked once;
bytes per cached account = growth of the server's VmRSS / accounts.

    crates/bench/scripts/serve-memory.py ./target/release/coffer 10000
"""
import os, subprocess, sys, tempfile, time, json, urllib.request, concurrent.futures as cf
binary, n = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp(prefix="coffer-memory-")
CONFIG = """[server]
listen = "127.0.0.1:18080"
request_timeout = "30s"
rate_limit_per_key = 0
[database]
url = "sqlite://{db}"
[cache]
ttl = "1h"
stale_if_error = "24h"
[sync]
enabled = false
[rates]
base = "EUR"
[log]
level = "warn"
[[providers]]
id = "p100"
kind = "p100"
base_url = "http://127.0.0.1:19100"
api_key_env = "P100_API_KEY"
timeout = "5s"
[[providers]]
id = "bank"
kind = "corebanq"
base_url = "http://127.0.0.1:19200"
api_key_env = "BANK_API_KEY"
timeout = "5s"
quote_currency = "EUR"
"""
with open(f"{d}/coffer.toml", "w") as f:
    f.write(CONFIG.replace("{db}", f"{d}/coffer.db"))
env = dict(os.environ, P100_API_KEY="sim-p100-key", BANK_API_KEY="sim-corebanq-token", COFFER_ADMIN_KEY="admin-key")
sim = subprocess.Popen([binary, "sim", "--customers", str(n + 10), "--accounts", "5", "--p100-listen", "127.0.0.1:19100", "--corebanq-listen", "127.0.0.1:19200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
srv = subprocess.Popen([binary, "--config", f"{d}/coffer.toml", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def req(method, path, body=None):
    r = urllib.request.Request("http://127.0.0.1:18080" + path, method=method, data=None if body is None else json.dumps(body).encode(), headers={"x-api-key": "admin-key", "content-type": "application/json"})
    with urllib.request.urlopen(r, timeout=60) as resp:
        return resp.status, resp.read()
for _ in range(200):
    try:
        if req("GET", "/healthz")[0] == 200: break
    except Exception: time.sleep(0.1)
def rss():
    for line in open(f"/proc/{srv.pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
def create(i):
    g = f"gen-{i:06d}"
    req("POST", "/v2/customers", {"id": f"m{i}", "name": f"m{i}", "links": [{"provider": "p100", "external_id": g}, {"provider": "bank", "external_id": g}]})
def ask(i):
    s, b = req("GET", f"/v2/accounts/balance?customer_id=m{i}")
    return json.loads(b)["accounts_count"]
try:
  ex = cf.ThreadPoolExecutor(16)
  if True:
    list(ex.map(create, range(n)))
    ask(0)
    time.sleep(1)
    before = rss()
    counts = list(ex.map(ask, range(1, n)))
    time.sleep(1)
    after = rss()
    again = list(ex.map(ask, range(1, n)))
    time.sleep(1)
    second = rss()
  accounts = sum(counts)
  metrics = req("GET", "/metrics")[1].decode()
  for line in metrics.splitlines():
      if line.startswith(("coffer_cache_bytes", "process_resident")):
          print(line)
  print(f"{binary}: {n} customers, {accounts} accounts asked once: RSS {before/2**20:.1f} -> {after/2**20:.1f} MiB, {(after-before)/accounts:.0f} bytes per cached account; second pass {second/2**20:.1f} MiB")
finally:
  srv.terminate(); sim.terminate(); srv.wait(); sim.wait()
