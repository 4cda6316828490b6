"""The ``bedrock-sessions`` command."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .inspect import _cli as inspect_cli
from .server import FAULTS, SERVICE_RETENTION_DAYS, LocalServer


def _serve(args: argparse.Namespace) -> int:
    faults = [f.strip() for f in args.faults.split(",")] if args.faults else None
    server = LocalServer(
        args.db, host=args.host, port=args.port, latency=args.latency_ms / 1000.0,
        fault_rate=args.fault_rate, faults=faults, seed=args.seed,
        region=args.region, account_id=args.account_id, idle_timeout=args.idle_timeout,
        max_steps_per_session=args.max_steps_per_session, max_step_bytes=args.max_step_bytes,
        default_page_size=args.default_page_size, durability=args.durability, log=args.log, ui=args.ui,
        iam=args.iam, insecure=args.insecure, read_timeout=args.read_timeout, audit=args.audit,
        retention_days=args.retention_days or None, **_key_options(args),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with server:
        where = args.db or "a temporary file (deleted at exit)"
        print(f"bedrock-sessions: serving the Bedrock session API at {server.endpoint_url} (store: {where})", flush=True)
        if args.iam:
            print(f"bedrock-sessions: requests must be signed (SigV4) by a key of {args.iam}, and are decided by its "
                  "accounts and IAM policies", flush=True)
        if args.audit and args.audit != "off":
            print(f"bedrock-sessions: audit log: {'stderr' if args.audit == '-' else args.audit}", flush=True)
        if args.fault_rate:
            print(f"bedrock-sessions: injecting faults {faults or list(FAULTS)} at rate {args.fault_rate}", flush=True)
        if args.ui:
            print(f"bedrock-sessions: the web inspector is at {server.ui_url}", flush=True)
        if args.keyring:
            print(f"bedrock-sessions: sessions are encrypted at rest with the keyring {args.keyring}", flush=True)
        elif args.kms or args.kms_key:
            default = f" (default key {args.kms_key})" if args.kms_key else ""
            print(f"bedrock-sessions: sessions are encrypted at rest with AWS KMS{default}", flush=True)
        print("bedrock-sessions: " + (f"sessions are erased {args.retention_days:g} days after their last update"
                                      if args.retention_days else "sessions are kept until deleted"), flush=True)
        while not stop.wait(0.5):
            pass
        print("bedrock-sessions: stopping (letting in-flight requests finish)", flush=True)
    # After the graceful stop, so in-flight requests are counted too.
    print(f"bedrock-sessions: served {server.stats()['requests']} requests", flush=True)
    return 0


def _key_options(args: argparse.Namespace) -> dict[str, object]:
    """The store's key source from serve's flags."""
    out: dict[str, object] = {}
    if args.keyring:
        out["keyring"] = args.keyring
    if args.kms:
        out["kms"] = True
    for name in ("kms_key", "kms_region", "kms_endpoint_url"):
        if getattr(args, name):
            out[name] = getattr(args, name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bedrock-sessions",
        description="Bedrock sessions: a local server of the session API, and an inspector of any store "
        "(an embedded file, a server, or Amazon Bedrock): sessions, threads, history, state, diffs, export and copy")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Bedrock session REST API over the embedded store")
    serve.add_argument("--db", help="SQLite file of the store (default: a temporary file)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every API request")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="share of API requests that get a fault (0-1)")
    serve.add_argument("--faults", help=f"comma-separated faults to inject, among {','.join(FAULTS)} (default: all)")
    serve.add_argument("--seed", type=int, default=24301, help="seed of the fault generator")
    serve.add_argument("--log", default="-", metavar="FILE|-|off",
                       help="one JSON line per API request: appended to FILE, - for stderr (default), off for none")
    assumed = serve.add_argument_group(
        "the service's assumed behaviours", "where the service is undocumented, the local choice (docs/server.md)")
    assumed.add_argument("--region", default="us-east-1", help="region of the session ARNs (default us-east-1)")
    assumed.add_argument("--account-id", default="000000000000",
                         help="12-digit account of the session ARNs (default 000000000000)")
    assumed.add_argument("--idle-timeout", type=float, default=3600.0,
                         help="seconds without a write before a session reads as EXPIRED (default 3600)")
    assumed.add_argument("--max-steps-per-session", type=int, default=1000,
                         help="quota: invocation steps per session (default 1000)")
    assumed.add_argument("--max-step-bytes", type=int, default=52_428_800,
                         help="quota: bytes of one step's payload (default 52428800)")
    assumed.add_argument("--default-page-size", type=int, default=10,
                         help="page size of lists without maxResults, 1-1000 (default 10)")
    serve.add_argument("--iam", metavar="FILE",
                       help="identities (accounts, principals, access keys, tags, IAM policies): every API request must "
                       "then be signed (SigV4) by one of their keys and is decided by its principal's account and "
                       "policies; docs/server.md")
    serve.add_argument("--audit", metavar="FILE|-|off", default="off",
                       help="audit log, one JSON line per API request (who, what, decision, outcome; CloudTrail's "
                       "field names): appended to FILE, - for stderr, off (default)")
    serve.add_argument("--read-timeout", type=float, default=20.0, metavar="SECONDS",
                       help="close connections that send nothing for this long; 408 for a stalled request (default 20)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow binding a non-loopback address without --iam (anyone who reaches it can use it)")
    protection = serve.add_argument_group(
        "data protection", "encryption at rest and retention, as the service has them (docs/encryption.md)")
    protection.add_argument("--keyring", metavar="FILE",
                            help="encrypt sessions at rest with the keys of this JSON keyring file (mode 600): those "
                            "that name a key (encryptionKeyArn) with it, the others with the keyring's default key")
    protection.add_argument("--kms-key", metavar="ARN",
                            help="encrypt sessions at rest with AWS KMS (standard credentials): this key for sessions "
                            "that name none, the named key for the others")
    protection.add_argument("--kms", action="store_true",
                            help="AWS KMS without a default key: only sessions that name a key are encrypted")
    protection.add_argument("--kms-region", metavar="REGION", help="KMS's region (default: the key's, else --region)")
    protection.add_argument("--kms-endpoint-url", metavar="URL", help="KMS's endpoint (an emulator, a VPC endpoint)")
    protection.add_argument("--retention-days", type=float, default=SERVICE_RETENTION_DAYS, metavar="DAYS",
                            help="erase sessions this many days after their last update, their data keys first "
                            f"(default {SERVICE_RETENTION_DAYS:g}, the service's; 0 keeps them until deleted)")
    serve.add_argument("--ui", action="store_true",
                       help="also serve the web inspector of the store, under /ui/ (docs/inspector.md)")
    serve.add_argument("--durability", choices=("full", "normal"), default="full",
                       help="full: fsync per commit (survives power loss); normal: survives a crash of the process")
    inspect_cli.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in inspect_cli.COMMANDS:
        return inspect_cli.run(args)
    if args.command == "serve":
        try:
            return _serve(args)
        except (OSError, ValueError) as err:
            print(f"bedrock-sessions: {err}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
