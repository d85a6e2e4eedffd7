"""Runs a current ClickHouse engine (chdb-core's embedded `clickhouse local`) as a server.

Started by localStack/clickhouseCurrent.ts with the service directory as its working directory:
`clickhouse local` reads the ports, listen_host and users from the config.xml there.

chdb has no server mode of its own. In 26.x `clickhouse local` accepts SYSTEM START LISTEN, and
the listeners live only as long as the query that started them, so that query ends with a
keep-alive that sleeps one second per row. chdb's connection API refuses these statements; its
one-shot query() accepts them, once per process. None of this is documented chdb behaviour,
hence the exact version check and the check that the ports really accept connections.

SIGTERM or SIGINT cancels the keep-alive through the HTTP port, as the config's user (its
password, if any, in CHDB_SERVER_PASSWORD): the keep-alive belongs to no user, so only a user
allowed to kill any query can cancel it. The query then returns and the process exits 0.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

KEEPALIVE_COMMENT = "ballast-chdb-keepalive"
# About thirty years at one row a second.
KEEPALIVE_ROWS = 1_000_000_000
LISTEN_TIMEOUT_S = 15
STOP_TIMEOUT_S = 20


def log(message):
    print(f"chdbServer: {message}", flush=True)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--expect-version", required=True, help="the chdb-core version, exactly")
    parser.add_argument("--host", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--native-port", type=int, required=True)
    parser.add_argument("--user", required=True, help="cancels the keep-alive on SIGTERM")
    return parser.parse_args()


def import_chdb(expected):
    try:
        import chdb
    except ImportError as err:
        sys.exit(f"chdbServer: cannot import chdb (chdb-core {expected}): {err}")
    engine_prefix = ".".join(expected.split(".")[:2]) + "."
    if chdb.__version__ != expected or not chdb.engine_version.startswith(engine_prefix):
        sys.exit(
            f"chdbServer: found chdb-core {chdb.__version__} (ClickHouse {chdb.engine_version}), "
            f"expected exactly {expected}: the server mode used here is not a documented chdb feature"
        )
    return chdb


def fail(message):
    """Exits at once: a normal exit would wait on the engine's threads, which may still serve."""
    print(f"chdbServer: {message}", file=sys.stderr, flush=True)
    os._exit(1)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def kill_keepalive(args):
    sql = f"KILL QUERY WHERE Settings['log_comment'] = '{KEEPALIVE_COMMENT}' SYNC FORMAT Null"
    headers = {"X-ClickHouse-User": args.user, "X-ClickHouse-Key": os.environ.get("CHDB_SERVER_PASSWORD", "")}
    request = urllib.request.Request(
        f"http://{args.host}:{args.http_port}/", data=sql.encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=STOP_TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, OSError) as err:
        # No HTTP listener (SYSTEM STOP LISTEN), or it refuses the user: nothing else can end the query.
        fail(f"could not cancel the keep-alive query ({err}); exiting without the engine's shutdown")


def main():
    args = parse_args()
    chdb = import_chdb(args.expect_version)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    outcome = {}

    def serve():
        sql = (
            "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
            f"SELECT sum(sleepEachRow(1)) FROM numbers({KEEPALIVE_ROWS}) "
            f"SETTINGS max_block_size = 1, log_comment = '{KEEPALIVE_COMMENT}'"
        )
        try:
            result = chdb._chdb.query(sql, "TabSeparated", path=args.data_dir)
            # chdb prints a failed statement's error itself and mostly reports none here.
            outcome["error"] = result.error_message() if result.has_error() else "its error is printed above"
        except Exception as err:  # noqa: BLE001 - reported, whatever chdb raised
            outcome["error"] = str(err)

    # A daemon thread: should the query ignore the cancel, the process can still exit.
    server = threading.Thread(target=serve, name="chdb-server", daemon=True)
    server.start()

    what = f"chdb-core {args.expect_version} (ClickHouse {chdb.engine_version})"
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while not (port_open(args.host, args.http_port) and port_open(args.host, args.native_port)):
        if not server.is_alive():
            fail(f"{what}: the server query ended before listening: {outcome['error']}")
        if time.monotonic() > deadline:
            fail(
                f"{what}: SYSTEM START LISTEN ran but {args.host}:{args.http_port} (HTTP) and "
                f"{args.host}:{args.native_port} (native) did not both accept connections within "
                f"{LISTEN_TIMEOUT_S} s"
            )
        time.sleep(0.1)
    log(f"{what} listening on http://{args.host}:{args.http_port} and native port {args.native_port}")

    while server.is_alive() and not stop.wait(0.5):
        pass
    if not server.is_alive():
        fail(f"{what}: the keep-alive query ended: {outcome['error']}")

    log("stopping")
    kill_keepalive(args)
    server.join(STOP_TIMEOUT_S)
    if server.is_alive():
        fail(f"the keep-alive query was still running {STOP_TIMEOUT_S} s after the cancel")
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
