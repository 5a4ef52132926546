"""``python -m acmelab.lab.aliyun``: run the lab's Alibaba Cloud endpoint.

Started by :class:`acmelab.lab.Lab`::

    ACMELAB_LAB_ACCESS_KEY_SECRET=... python -m acmelab.lab.aliyun \\
        --listen 127.0.0.1:8443 --cert CERT --key KEY \\
        --challtestsrv http://127.0.0.1:8055 --state-dir DIR \\
        --access-key-id ID --cdn-edge-port 9443 --apigateway-edge-port 9444 \\
        [--dns-propagation-delay S] [--api-latency S]

The access key secret comes only from the environment (never argv, which
``ps`` shows).  Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from acmelab.lab.aliyun import alidns
from acmelab.lab.aliyun.latency import DelayedDns, check_seconds
from acmelab.lab.aliyun.server import LabState, load_handler_modules, make_server

SECRET_ENV = "ACMELAB_LAB_ACCESS_KEY_SECRET"


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _seconds(text: str) -> float:
    try:
        return check_seconds(float(text), "seconds")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acmelab.lab.aliyun", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT to serve HTTPS on")
    parser.add_argument("--cert", type=Path, required=True, help="listener certificate (PEM, signed by the lab CA)")
    parser.add_argument("--key", type=Path, required=True, help="listener private key (PEM)")
    parser.add_argument("--challtestsrv", help="pebble-challtestsrv management URL (TXT/CNAME mirror)")
    parser.add_argument("--state-dir", type=Path, help="directory for state (alidns_zones.json is read from here)")
    parser.add_argument("--access-key-id", required=True, help="the lab's AccessKeyId")
    parser.add_argument("--cdn-edge-port", type=int, help="port of the CDN TLS edge (deploy handlers)")
    parser.add_argument("--apigateway-edge-port", type=int, help="port of the API Gateway TLS edge (deploy handlers)")
    parser.add_argument("--dns-propagation-delay", type=_seconds, default=0.0, metavar="S",
                        help="seconds before an Alidns change reaches the lab DNS (challtestsrv)")
    parser.add_argument("--api-latency", type=_seconds, default=0.0, metavar="S",
                        help="seconds added to every API answer")
    parser.add_argument("--log-level", default=os.environ.get("ACMELAB_LAB_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    secret = os.environ.get(SECRET_ENV)
    if not secret:
        parser.error(f"the access key secret must be given in the environment variable {SECRET_ENV}")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    challtestsrv = None
    if args.challtestsrv:
        from acmelab.lab.challtestsrv import ChallTestSrv
        challtestsrv = ChallTestSrv(args.challtestsrv)
    if args.state_dir:
        args.state_dir.mkdir(parents=True, exist_ok=True)
    state = LabState(
        access_key_id=args.access_key_id, access_key_secret=secret, challtestsrv=challtestsrv,
        state_dir=args.state_dir, cert_path=args.cert, key_path=args.key, listen_host=args.listen[0],
        cdn_edge_port=args.cdn_edge_port, apigateway_edge_port=args.apigateway_edge_port,
        api_latency=args.api_latency,
    )
    server = make_server(args.listen, args.cert, args.key, state)
    alidns.mirror_all(state)  # the seeded records are in the DNS from the start
    if challtestsrv is not None and args.dns_propagation_delay:
        state.challtestsrv = DelayedDns(challtestsrv, args.dns_propagation_delay)
    modules = load_handler_modules()
    for module in modules:
        start = getattr(module, "start", None)
        if callable(start):
            start(state)

    def shut_down(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    logging.getLogger("acmelab.lab.aliyun").info(
        "Alibaba Cloud lab endpoint on https://%s:%d (AccessKeyId %s)", *args.listen, args.access_key_id)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for module in modules:
            stop = getattr(module, "stop", None)
            if callable(stop):
                stop(state)
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
