"""The ``afstand`` command: serve, dev-token, supplier create/rotate/revoke, audit verify, evidence verify, demo."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from pathlib import Path

from api.platform.settings import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "role", None) and args.command == "serve":
        overrides["role"] = args.role
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.platform.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level)
    # proxy_headers off: uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1 (or FORWARDED_ALLOW_IPS);
    # the app trusts it only from AFSTAND_TRUSTED_PROXIES.
    common = dict(host=settings.host, port=settings.port, log_config=None, ws="websockets", proxy_headers=False,
                  timeout_graceful_shutdown=settings.shutdown_grace_s)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return 0
    from api.platform.database import resolve_url

    # Several processes of this role on one port, each a whole app: the leases give the engine, the relay and the
    # scheduled jobs to one of them at a time, and every one serves HTTP (README, "Running the service"). They
    # share this command's database (an embedded one is started here and stopped when it exits) and settings.
    os.environ.update({"DATABASE_URL": resolve_url(settings.database_url, settings.data_dir),
                       "AFSTAND_ROLE": settings.role, "AFSTAND_DATA_DIR": str(settings.data_dir)})
    uvicorn.run("api.app:app_from_environment", factory=True, workers=settings.workers, **common)  # type: ignore[arg-type]
    return 0


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from api.cluster.status import cluster_status, render

    settings = _settings(args)
    report = asyncio.run(cluster_status(settings))
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0 if report["healthy"] else 1


def cmd_dev_token(args: argparse.Namespace) -> int:
    from api.auth.principals import STAFF_ROLES, mint_staff_token
    from api.platform.secrets import server_key

    settings = _settings(args)
    if settings.oidc_issuer:
        print("afstand dev-token: refused: an OIDC issuer is configured (AFSTAND_OIDC_ISSUER); use its tokens", file=sys.stderr)
        return 2
    if args.role not in STAFF_ROLES:
        print(f"afstand dev-token: unknown role {args.role!r}; one of {', '.join(STAFF_ROLES)}", file=sys.stderr)
        return 2
    print(mint_staff_token(server_key(settings), args.role, args.sub or f"dev-{args.role}"))
    return 0


async def create_supplier(settings: Settings, name: str) -> dict[str, str]:
    from api.auth.service import register_supplier
    from api.platform.database import connect, resolve_url
    from api.platform.migrate import apply_migrations
    from api.platform.secrets import server_key

    conn = await connect(resolve_url(settings.database_url, settings.data_dir))
    try:
        await apply_migrations(conn)
        return await register_supplier(conn, server_key(settings), name)
    finally:
        await conn.close()


def cmd_supplier_create(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(create_supplier(_settings(args), args.name))))
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (e.g. a container)
        return "unknown"


async def _supplier_key_command(settings: Settings, action: str, key_id: str) -> dict[str, object]:
    from api.platform.database import connect, resolve_url
    from api.platform.migrate import apply_migrations
    from api.platform.secrets import server_key
    from api.auth.service import revoke_key, rotate_key

    actor = f"cli:{_os_user()}"  # the audit log names who ran the command, in the KIND:NAME form of every actor
    conn = await connect(resolve_url(settings.database_url, settings.data_dir))
    try:
        await apply_migrations(conn)
        if action == "rotate":
            out = await rotate_key(conn, server_key(settings), key_id, actor, "admin")
        else:
            out = await revoke_key(conn, key_id, actor, "admin")
        return {k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if v is not None else None)
                for k, v in out.items()}
    finally:
        await conn.close()


def cmd_supplier_key(args: argparse.Namespace) -> int:
    """``rotate``: a second active key for the supplier (JSON with the new secret, printed once); ``revoke``."""
    from api.platform.problems import Problem

    try:
        print(json.dumps(asyncio.run(_supplier_key_command(_settings(args), args.supplier_command, args.key_id))))
    except Problem as p:
        print(f"afstand supplier {args.supplier_command}: {p.detail}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from api.demo.run import run_demo

    return asyncio.run(run_demo(_settings(args), port=args.port or 8765, keep_serving=args.serve))


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from api.privacy.audit import verify_chain
    from api.platform.database import connect, resolve_url

    settings = _settings(args)

    async def run() -> int:
        conn = await connect(resolve_url(settings.database_url, settings.data_dir))
        try:
            report = await verify_chain(conn)
        finally:
            await conn.close()
        for fault in report.faults:
            print(fault)
        print(f"audit chain {'intact' if report.intact else 'BROKEN'}: {report.records} records")
        return 0 if report.intact else 1

    return asyncio.run(run())


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every digest and the signature hold, 1 on any tampering, 2 when the key cannot be read."""
    from api.privacy.evidence import load_public_key, public_key_info, verify

    trusted = None
    try:
        if args.public_key:
            trusted = load_public_key(Path(args.public_key).read_bytes())
        elif args.data_dir or load_settings().secret_key:
            settings = _settings(args)
            path = Path(settings.data_dir) / "server.key"
            if settings.secret_key or path.exists():
                from api.platform.secrets import server_key

                trusted = load_public_key(public_key_info(server_key(settings))["public_key_pem"].encode())
    except (OSError, ValueError) as e:
        print(f"afstand evidence verify: cannot read the trusted key: {e}", file=sys.stderr)
        return 2
    report = verify(Path(args.file), trusted)
    for fault in report.faults:
        print(fault)
    print(f"evidence package {'intact' if report.intact else 'TAMPERED'}: {report.files} files,"
          f" signed by {report.fingerprint or 'unknown key'}")
    if report.intact and not report.key_pinned:
        print("note: checked against the key inside the package; compare its fingerprint with the published"
              " one (GET /v1/evidence/public-key) or pass --public-key", file=sys.stderr)
    return 0 if report.intact else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="afstand", description="Afstand: protective proximity monitoring")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and the engine")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir")
    serve.add_argument("--role", choices=("all", "api", "engine", "dispatcher"),
                       help="the process's part (default all, or AFSTAND_ROLE); README, deployment")
    serve.set_defaults(func=cmd_serve)

    cluster = sub.add_parser("cluster", help="the processes sharing the watch")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    status = cluster_sub.add_parser("status", help="who owns which partition and lease, and how far behind each is")
    status.add_argument("--data-dir")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=cmd_cluster_status)

    tok = sub.add_parser("dev-token", help="print a staff token (development mode only)")
    tok.add_argument("--role", required=True)
    tok.add_argument("--sub")
    tok.add_argument("--data-dir")
    tok.set_defaults(func=cmd_dev_token)

    sup = sub.add_parser("supplier", help="manage ankle-monitor suppliers")
    sup_sub = sup.add_subparsers(dest="supplier_command", required=True)
    create = sup_sub.add_parser("create", help="create a supplier key; prints {key_id, secret} once")
    create.add_argument("name")
    create.add_argument("--data-dir")
    create.set_defaults(func=cmd_supplier_create)
    rotate = sup_sub.add_parser("rotate", help="add a second key for the supplier of KEY_ID; both work until one is revoked")
    rotate.add_argument("key_id")
    rotate.add_argument("--data-dir")
    rotate.set_defaults(func=cmd_supplier_key)
    revoke = sup_sub.add_parser("revoke", help="revoke KEY_ID at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--data-dir")
    revoke.set_defaults(func=cmd_supplier_key)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 when a record was altered or deleted")
    verify.add_argument("--data-dir")
    verify.set_defaults(func=cmd_audit_verify)

    ev = sub.add_parser("evidence", help="evidence packages")
    ev_sub = ev.add_subparsers(dest="evidence_command", required=True)
    ev_verify = ev_sub.add_parser("verify", help="check an evidence package's digests and signature; exit 1 if tampered")
    ev_verify.add_argument("file")
    ev_verify.add_argument("--public-key", help="PEM of the trusted signing key (GET /v1/evidence/public-key)")
    ev_verify.add_argument("--data-dir", help="trust the signing key of the server using this data dir")
    ev_verify.set_defaults(func=cmd_evidence_verify)

    demo = sub.add_parser("demo", help="replay a scripted incident near Utrecht through the whole system")
    demo.add_argument("--data-dir")
    demo.add_argument("--port", type=int)
    demo.add_argument("--serve", action="store_true", help="keep serving after the script, for the console")
    demo.set_defaults(func=cmd_demo)
    return parser


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Python's default would end the process without running exit handlers, leaving the embedded PostgreSQL
    # this command started behind; uvicorn re-raises a SIGTERM it handled once the server has shut down.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: exit handlers (the embedded PostgreSQL's stop) still run
        return 128 + signal.SIGINT


if __name__ == "__main__":
    raise SystemExit(main())
