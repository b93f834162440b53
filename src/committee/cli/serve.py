"""``committee serve``: a trained committee behind HTTP (FastAPI + uvicorn), loopback by default."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from committee.base.errors import CommitteeError, UsageError
from committee.cli.flags import port_number, positive_float, positive_int, probability
from committee.cli.use_flags import add_model_arg, add_sets_args
from committee.rules.committee_rules import DEFAULT_RULE

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a trained committee over HTTP: a JSON API and a page to drop pictures on")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default 8000)")
    p.add_argument("--rule", default=DEFAULT_RULE, help=f"committee rule (default {DEFAULT_RULE})")
    add_model_arg(p)
    add_sets_args(p, always=True)
    p.add_argument(
        "--coverage",
        type=probability,
        default=0.9,
        metavar="F",
        help="abstain below the confidence that keeps the F most confident share of validation answered (default 0.9)",
    )
    p.add_argument("--precision", choices=("fp32", "bf16"), help="arithmetic of every member (default: as trained)")
    g = p.add_argument_group("batching and limits")
    g.add_argument("--max-batch", type=positive_int, default=64, metavar="N", help="images per forward pass (64)")
    g.add_argument(
        "--max-wait-ms",
        type=positive_float,
        default=5.0,
        metavar="MS",
        help="how long the first request of a batch waits for others (default 5 ms)",
    )
    g.add_argument("--max-body-mb", type=positive_float, default=16.0, metavar="MB", help="request body cap (16 MB)")
    g.add_argument("--max-request-images", type=positive_int, default=256, metavar="N", help="images per request (256)")
    g.add_argument(
        "--max-decoded-mb",
        type=positive_float,
        default=512.0,
        metavar="MB",
        help="decoded pictures in flight across all requests; a request waits for room, within its --timeout (512 MB)",
    )
    g.add_argument(
        "--max-header-kb",
        type=positive_float,
        default=64.0,
        metavar="KB",
        help="request headers over this are refused with 431 and the connection closed (64 KB)",
    )
    g.add_argument(
        "--header-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="a request's headers must arrive within this (slow clients get 408 and are cut off; 10 s)",
    )
    g.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds per request once its headers are in: reading its body, decoding, answering (30)",
    )


def check_port(host: str, port: int) -> None:
    """One line now, rather than uvicorn's log later, when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise CommitteeError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from committee.serving.http_app import ServiceSettings, create_app
        from committee.serving.http_guard import guarded
    except ImportError as exc:
        raise UsageError(f"committee serve needs FastAPI and uvicorn: pip install 'committee[serve]' ({exc})") from None
    from committee.serving.trained import Committee

    if args.host not in LOOPBACK:
        print(
            f"committee: warning: listening on {args.host}: anyone who can reach this machine can use the "
            "service (no authentication); use 127.0.0.1 unless that is what you want",
            file=sys.stderr,
        )
    check_port(args.host, args.port)
    committee = Committee.load(args.run_dir, args.rule, args.precision, args.model)
    settings = ServiceSettings(
        alpha=args.alpha or 0.1,
        set_method=args.set_method or "lac",
        coverage=args.coverage,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        max_request_images=args.max_request_images,
        timeout_s=args.timeout,
        max_decoded_bytes=int(args.max_decoded_mb * (1 << 20)),
    )
    app = create_app(committee, settings)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"serving the committee of {len(committee.members)} ({', '.join(committee.members)}, rule {committee.rule}) "
        f"on http://{host}:{args.port}/  (API docs at /docs; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    protocol = guarded(int(args.max_header_kb * 1024), args.header_timeout)
    uvicorn.run(app, host=args.host, port=args.port, http=protocol, log_level="warning", access_log=False)
    return 0
