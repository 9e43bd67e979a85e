"""Throughput with several concurrent clients, measured with pgbench.

The harness loads the first N query vectors into a queries table (one per
vector type: lvector and pgvector's vector), then runs pgbench with a custom
script: each transaction draws a random query id and runs the target's k-NN
query on that query's vector, as a prepared statement (-M prepared):

    \\set qid random(0, N - 1)
    SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM
        bench_queries_lvector WHERE id = :qid) LIMIT 10;

Filtered targets take the filter value from the same row, so every query
keeps the value the single-client run used. The vector arrives through a
primary-key lookup (an InitPlan), which costs a few microseconds against the
milliseconds of a k-NN query. Search settings (SET hnsw.ef_search = ...) reach
pgbench's sessions through PGOPTIONS. TPS and the average latency come from
pgbench's own summary.
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from typing import Optional

import targets as registry

QUERIES_TABLES = {"lvector": "bench_queries_lvector", "vector": "bench_queries_vector"}


def queries_table(t) -> str:
    return QUERIES_TABLES[t.spec.type_name]


def script_sql(t, k: int, qtable: str) -> str:
    """The k-NN statement of target t with the query vector (and the filter
    value) read from qtable by :qid."""
    where = (f" WHERE {t.filter} = (SELECT {t.filter} FROM {qtable} WHERE id = :qid)"
             if t.filter else "")
    return (f"SELECT id FROM {t.spec.table}{where} ORDER BY embedding {registry.OPERATORS[t.metric]} "
            f"(SELECT embedding FROM {qtable} WHERE id = :qid) LIMIT {int(k)}")


def script(t, k: int, qtable: str, n_queries: int) -> str:
    """A pgbench script: a random query id, then the k-NN query."""
    if n_queries < 1:
        raise ValueError("need at least one query")
    return f"\\set qid random(0, {n_queries - 1})\n{script_sql(t, k, qtable)};\n"


def pgoptions(set_statements: list) -> str:
    """PGOPTIONS for pgbench's sessions from 'SET name = value' statements:
    '-c name=value' each, with spaces and backslashes escaped as libpq wants."""
    out = []
    for s in set_statements:
        name, value = parse_set(s)
        value = value.replace("\\", "\\\\").replace(" ", "\\ ")
        out.append(f"-c {name}={value}")
    return " ".join(out)


def parse_set(statement: str) -> tuple:
    """(name, value) of 'SET name = value' / 'SET name TO value', quotes
    around the value removed."""
    m = re.match(r"^\s*SET\s+(?:SESSION\s+)?([A-Za-z_][\w.]*)\s*(?:=|\bTO\b)\s*(.+?)\s*;?\s*$", statement, re.I)
    if not m:
        raise ValueError(f"not a SET statement: {statement!r}")
    value = m.group(2)
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    return m.group(1), value


_FLOAT = r"([0-9]+(?:\.[0-9]+)?)"


def parse_pgbench(output: str) -> dict:
    """TPS, latency and transaction counts from pgbench's summary (PG 13+
    wording; 'number of failed transactions' appears from PG 15)."""
    def num(pattern, cast=float):
        m = re.search(pattern, output, re.M)
        return cast(m.group(1)) if m else None

    tps = num(r"^tps = " + _FLOAT + r" \((?:without initial connection time|excluding connections establishing)\)")
    if tps is None:
        tps = num(r"^tps = " + _FLOAT)
    res = {
        "tps": tps,
        "latency_avg_ms": num(r"^latency average = " + _FLOAT + " ms"),
        "latency_stddev_ms": num(r"^latency stddev = " + _FLOAT + " ms"),
        "transactions": num(r"^number of transactions actually processed: ([0-9]+)", int),
        "failed": num(r"^number of failed transactions: ([0-9]+)", int),
        "clients": num(r"^number of clients: ([0-9]+)", int),
        "threads": num(r"^number of threads: ([0-9]+)", int),
        "duration_s": num(r"^duration: ([0-9]+) s", int),
        "connection_ms": num(r"^initial connection time = " + _FLOAT + " ms"),
    }
    if res["tps"] is None or res["transactions"] is None:
        raise ValueError("no pgbench summary in the output:\n" + output[-2000:])
    return res


def pgbench_path() -> Optional[str]:
    """pgbench of the server's major version (pg_config's bindir), else PATH's."""
    bindir = None
    if shutil.which("pg_config"):
        try:
            bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            bindir = None
    for cand in ([os.path.join(bindir, "pgbench")] if bindir else []) + [shutil.which("pgbench") or ""]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def run_pgbench(pgbench: str, script_text: str, clients: int, seconds: int, options: str = "",
                timeout_slack: int = 120) -> dict:
    """Runs pgbench -n -M prepared with the script for the given time and
    returns the parsed summary plus the command line. Connection settings
    come from the PG* environment variables."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="libravdb-bench-", delete=False) as f:
        f.write(script_text)
        path = f.name
    try:
        os.chmod(path, 0o644)
        cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
               "-T", str(seconds), "-f", path]
        env = dict(os.environ)
        if options:
            env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + options).strip()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + timeout_slack)
        if p.returncode != 0:
            raise RuntimeError(f"pgbench exited with {p.returncode}: {(p.stderr or p.stdout).strip()[-1500:]}")
        res = parse_pgbench(p.stdout)
        res["command"] = " ".join(shlex.quote(c) for c in cmd[:-1]) + " -f script.sql"
        if options:
            res["pgoptions"] = options
        return res
    finally:
        os.unlink(path)
