"""Run the PyPI ``localstripe`` server on a listening socket inherited from the test session.

    python tests/support/localstripe_server.py --fd FD --state-dir DIR

The parent binds 127.0.0.1 port 0 and passes the socket (no port race, loopback only).
localstripe pickles its whole store to ``/tmp/localstripe.pickle`` on every write; here that
file goes to ``DIR`` instead, so concurrent sessions do not share or clobber one file. The store
starts empty (nothing is loaded from disk). Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket


def _redirect_store(state_dir: str) -> None:
    from localstripe import resources

    path = os.path.join(state_dir, "localstripe.pickle")

    def dump_to_disk(self: resources.Store) -> None:
        with open(path, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    def try_load_from_disk(self: resources.Store) -> None:
        raise RuntimeError("the test localstripe always starts from an empty store")

    resources.Store.dump_to_disk = dump_to_disk  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = try_load_from_disk  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--state-dir", required=True, help="where the store pickle goes")
    args = parser.parse_args()

    _redirect_store(args.state_dir)
    from aiohttp import web
    from localstripe.server import app

    sock = socket.socket(fileno=args.fd)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
