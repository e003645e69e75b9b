"""``artm-compose dashboard`` and ``plot``: the CLI side of the dashboard package (loaded lazily by the CLI)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from artm_compose.dashboard.plot import plot_scores, read_scores
from artm_compose.dashboard.relay import serve_relay
from artm_compose.dashboard.snapshot import ClusterWatch
from artm_compose.dashboard.server import DEFAULT_PORT, LOCAL_HOST, make_server
from artm_compose.errors import ConfigError
from artm_compose.listing import list_clusters
from artm_compose.record import ClusterRecord
from artm_compose.state import StateDir

DEFAULT_STATE_DIR = Path("state")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("dashboard")
@click.option("--state-dir", "state_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="State directory of a cluster to show; repeat for several [default: ./state].")
@click.option("--all", "show_all", is_flag=True,
              help="Show every cluster `artm-compose ls` lists (local, Compose, Swarm), listed again as "
                   "clusters come and go, on a page that links to each one's view; instead of --state-dir.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--host", default=LOCAL_HOST, show_default=True,
              help="Address to listen on. The dashboard has no login: anything but 127.0.0.1 shows the "
                   "cluster to everyone who can reach that address (a warning is printed).")
@click.option("--inside", is_flag=True, hidden=True,
              help="Run inside the cluster's network (up --dashboard): status from Redis and heartbeats, not Docker.")
@click.option("--vocab", "vocab_path", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="The vocabulary where this process sees it (inside a container), for the top tokens.")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="The reader's Redis password where this process sees it (a secret in a container) "
                   "[default: the state directory's redis.reader.password].")
@click.option("--unix-socket", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Listen on this Unix socket instead of --host:--port (Swarm up --dashboard, behind its relay).")
@click.option("--relay-to", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Serve no cluster: pass every connection to --host:--port on to the dashboard at this Unix socket.")
def dashboard_command(state_dirs: tuple[Path, ...], show_all: bool, port: int, host: str, inside: bool,
                      vocab_path: Path | None, password_file: Path | None, unix_socket: Path | None,
                      relay_to: Path | None) -> None:
    """Serve a live dashboard of the training in the browser.

    \b
    Score curves per pass (perplexity and every other per-pass score), pass times and bytes moved,
    per-executor progress, liveness and restarts, the Redis nodes (role, slots, memory, keys, health)
    and the top tokens of every topic of the committed model. It updates while the cluster trains
    and keeps working after the training finished.
    \b
    Without --all it shows the cluster of ./state, or of each --state-dir. With --all the first page lists
    every cluster `artm-compose ls` would (name, runtime, status, health, pass, perplexity), each a link to
    its view; several --state-dir get that page too.
    \b
    Also: /api/clusters, /api/status?cluster=STATE_DIR (the `status --json` document), /api/snapshot, and
    /metrics for Prometheus (every cluster, each series labelled `cluster` and `state_dir`; ?cluster=STATE_DIR
    for one, as in Prometheus' multi-target pattern).
    On a remote Swarm manager: run it there and open it through an SSH tunnel,
      ssh -L 8265:127.0.0.1:8265 MANAGER   then browse http://127.0.0.1:8265/
    """
    if show_all and state_dirs:
        raise ConfigError("--all shows every cluster `artm-compose ls` lists: give it without --state-dir")
    if relay_to is not None:
        try:
            serve_relay(host, port, relay_to, ready=lambda bound_host, bound_port: click.echo(
                f"dashboard relay: http://{bound_host}:{bound_port}/ to {relay_to}"))
        except OSError as error:
            raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        return
    chosen = [path.expanduser().resolve() for path in (state_dirs or (DEFAULT_STATE_DIR,))]
    missing = [str(path) for path in chosen if not (path / "cluster.json").is_file()]
    if missing and not show_all:
        raise ConfigError(f"state_dir={missing[0]!r} holds no cluster (no cluster.json); "
                          f"run `artm-compose up` with this --state-dir first, or see them all with --all")
    try:
        server = make_server(None if show_all else lambda: chosen, host=host, port=port,
                             watch=lambda path: ClusterWatch(path, inside=inside, vocab_path=vocab_path,
                                                             password_file=password_file),
                             listing=list_clusters if show_all else None, unix_socket=unix_socket)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    if not is_loopback(host) and not inside:
        click.echo(f"warning: --host {host}: the dashboard has no authentication; everyone who can reach "
                   f"{host}:{server.server_address[1]} sees the cluster", err=True)
    shown = "every cluster `artm-compose ls` lists" if show_all else f"{len(chosen)} cluster(s)"
    where = f"unix:{unix_socket}" if unix_socket is not None else "http://{}:{}/".format(*server.server_address[:2])
    click.echo(f"dashboard: {where} ({shown}; Ctrl-C to stop)")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command("plot")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE_DIR,
              show_default=True, help="State directory of the cluster (its scores.json is drawn).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image to write: .png, .svg or .pdf.")
def plot_command(state_dir: Path, out: Path) -> None:
    """Draw the score curves per pass (perplexity, other scores, pass times, bytes moved) to a file.

    Needs no browser and no running cluster: it reads STATE_DIR/scores.json, which the master
    rewrites after every pass.
    """
    state = StateDir.at(state_dir)
    scores = read_scores(state.scores)
    cluster = ClusterRecord.load(state).cluster if state.exists() else state.root.name
    click.echo(str(plot_scores(scores, out, title=f"{cluster}: run {scores.get('run', '?')}")))
