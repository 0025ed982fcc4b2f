#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A throw-away PostgreSQL cluster for the PostgreSQL backend's tests.

    cluster.py start STATE     initdb into a new temporary directory, start
                               the server (a unix socket in that directory
                               and 127.0.0.1 on a free port), write STATE
    cluster.py stop STATE      stop it and remove the directory
    cluster.py restart STATE   restart it (same directory, same port)
    cluster.py away STATE      stop it for AWAY_SECONDS, then start it again
                               (clients meanwhile find no server at all)
    cluster.py env STATE       print the connection strings (shell lines)

start also writes a libpq service file beside STATE (cluster.json:
cluster.pg_service.conf) naming the unix socket as service "whsem_test",
and stop removes it: a run whose environment is fixed before the cluster
exists (CTest's "pg.library." run of tests/library) reaches it through
PGSERVICEFILE and "service=whsem_test".

Nothing depends on a system-wide server or a fixed port. The server runs
as an unprivileged user (initdb refuses root): the invoking user if it is
not root, else "postgres" (or $WHSEM_PG_USER). Missing PostgreSQL server
binaries are an error, never a silent skip: .ci/setup installs them.
"""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    for d in os.environ.get("PATH", "").split(":"):
        if d and os.path.exists(os.path.join(d, "initdb")):
            return d
    sys.exit("cluster.py: PostgreSQL server binaries (initdb, pg_ctl) not found; run .ci/setup")


def server_user():
    if os.geteuid() != 0:
        return None
    return os.environ.get("WHSEM_PG_USER", "postgres")


def as_user(user, argv, **kw):
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    return subprocess.run(argv, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(state, sql, user=None, db="postgres"):
    argv = [os.path.join(state["bin"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", state["dir"], "-p", str(state["port"]), "-U", user or state["super"], "-d", db,
            "-c", sql]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def pg_ctl(state, *args):
    as_user(state["user"], [os.path.join(state["bin"], "pg_ctl"), "-D", state["data"], "-w",
                            "-t", "60", "-l", os.path.join(state["dir"], "log")] + list(args),
            stdout=subprocess.DEVNULL)


def params(state, host):
    return [("host", host), ("port", state["port"]), ("dbname", "postgres"), ("user", state["super"])]


def conninfo(state, host):
    return " ".join(f"{k}={v}" for k, v in params(state, host))


def service_file(path):
    return os.path.splitext(path)[0] + ".pg_service.conf"


def start(path):
    b = bindir()
    user = server_user()
    d = tempfile.mkdtemp(prefix="whsem-pg-")
    os.chmod(d, 0o755)
    if user:
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    data = os.path.join(d, "data")
    super_user = "whsem_super"
    as_user(user, [os.path.join(b, "initdb"), "-D", data, "-U", super_user, "-A", "trust",
                   "-E", "UTF8", "--no-sync"], stdout=subprocess.DEVNULL)
    port = free_port()
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{d}'\nfsync = off\nmax_connections = 100\n"
                "password_encryption = 'scram-sha-256'\n")
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write("local all all trust\n"
                "host all whsem_pw 127.0.0.1/32 scram-sha-256\n"
                "host all all 127.0.0.1/32 trust\n")
    state = {"dir": d, "data": data, "port": port, "bin": b, "user": user, "super": super_user}
    with open(path, "w") as f:
        json.dump(state, f)
    try:
        pg_ctl(state, "start")
        # A role with a password (TCP only), a role that may create nothing,
        # and a database where the backend's table does not exist yet.
        psql(state, "CREATE ROLE whsem_pw LOGIN PASSWORD 'sekrit-pw-42'")
        psql(state, "CREATE ROLE whsem_plain LOGIN")
        psql(state, "CREATE DATABASE whsem_fresh")
        with open(service_file(path), "w") as f:
            f.write("[whsem_test]\n" + "".join(f"{k}={v}\n" for k, v in params(state, d)))
    except BaseException:
        stop(path)
        raise
    print(f"PostgreSQL {b} on {d} and 127.0.0.1:{port}")


def load(path):
    with open(path) as f:
        return json.load(f)


def stop(path):
    if os.path.exists(service_file(path)):
        os.unlink(service_file(path))
    if not os.path.exists(path):
        return
    state = load(path)
    try:
        pg_ctl(state, "stop", "-m", "immediate")
    finally:
        shutil.rmtree(state["dir"], ignore_errors=True)
        os.unlink(path)


def restart(path):
    state = load(path)
    pg_ctl(state, "restart", "-m", "immediate")


# Long enough for a client's attempts to connect to fail several times.
AWAY_SECONDS = 4


def away(path):
    state = load(path)
    pg_ctl(state, "stop", "-m", "immediate")
    time.sleep(AWAY_SECONDS)
    pg_ctl(state, "start")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop", "restart", "away", "env"):
        sys.exit(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "start":
        stop(path)
        start(path)
    elif cmd == "stop":
        stop(path)
    elif cmd == "restart":
        restart(path)
    elif cmd == "away":
        away(path)
    else:
        s = load(path)
        print(f"WHSEM_PG_SOCKET='{conninfo(s, s['dir'])}'")
        print(f"WHSEM_PG_TCP='{conninfo(s, '127.0.0.1')}'")


if __name__ == "__main__":
    main()
