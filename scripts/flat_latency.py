#!/usr/bin/env python3
# A documented check (README, "PostgreSQL and many nodes"): the time of the
# attempts-by-endpoint list query with 10 thousand and with 1 million attempts
# in the table, on the SQLite schema of crates/herald-store/migrations/sqlite.
# Run from the repository root: python3 scripts/flat_latency.py
import sqlite3, time, os, glob
db='/tmp/herald-flat-latency.db'
if os.path.exists(db): os.remove(db)
c=sqlite3.connect(db)
for f in sorted(glob.glob('crates/herald-store/migrations/sqlite/*.sql')):
    c.executescript(open(f).read())
c.execute("INSERT INTO application VALUES ('app_1','org','u','n','{}',NULL,0,0)")
def fill(n, start):
    rows=((f"atmpt_{i:012d}", f"msg_{i:012d}", f"ep_{i%100}", 'app_1', 'http://x', 0, 200, 'ok', 1, 0, i) for i in range(start, start+n))
    c.execute("PRAGMA foreign_keys=OFF")
    c.executemany("INSERT INTO attempt (id,msg_id,endpoint_id,app_id,url,status,response_status_code,response,response_duration_ms,trigger_type,created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
q="SELECT a.* FROM attempt a WHERE a.app_id = ? AND a.endpoint_id = ? ORDER BY a.id DESC LIMIT 51"
def timeit():
    t=time.perf_counter(); n=200
    for _ in range(n): c.execute(q,('app_1','ep_7')).fetchall()
    return (time.perf_counter()-t)/n*1000
fill(10_000,0); a=timeit()
fill(990_000,10_000); b=timeit()
print(f"sqlite attempts by endpoint, first page: {a:.3f} ms at 10k, {b:.3f} ms at 1M")
print(c.execute("EXPLAIN QUERY PLAN "+q,('app_1','ep_7')).fetchall())
