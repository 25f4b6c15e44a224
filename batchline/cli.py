"""The `batchline` command."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from batchline.client.commands import register_client_commands
from batchline.client.pipelines import pipelines_app
from batchline.client.replay import replay, retry
from batchline.errors import BatchlineError
from batchline.keys import keys_app

if TYPE_CHECKING:
    from schemas.settings import Settings

app = typer.Typer(
    help="Batchline: batch transformation over Kafka and Faust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(pipelines_app, name="pipelines")
register_client_commands(app)
app.command()(replay)
app.command()(retry)


def _fail(exc: Exception) -> None:
    typer.echo(f"batchline: {exc}", err=True)
    raise typer.Exit(1)


AUTH_HELP = (
    "Authenticate clients (SASL/SCRAM-SHA-512) and authorize them with ACLs; their credentials "
    "are written into <data-dir>/credentials."
)


def _broker_data_dir(data_dir: Path | None, auth: bool) -> Path:
    from batchline.devstack import AUTH_BROKER_DIR, BROKER_DIR

    return data_dir or Path("data") / (AUTH_BROKER_DIR if auth else BROKER_DIR)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port of the client listener.")] = 9092,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the broker keeps its log (data/kafka; with --auth, data/kafka-auth)."
        ),
    ] = None,
    auth: Annotated[bool, typer.Option("--auth", help=AUTH_HELP)] = False,
) -> None:
    """Run a local Apache Kafka broker (KRaft) in the foreground until Ctrl-C or SIGTERM."""
    from batchline import broker as local_broker
    from batchline.broker.auth import BrokerCredentials
    from schemas.settings import Settings

    data_dir = _broker_data_dir(data_dir, auth)
    try:
        process = local_broker.start(data_dir, port, auth=auth)
    except BatchlineError as exc:
        _fail(exc)
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    bootstrap = f"127.0.0.1:{port}"
    try:
        security = local_broker.admin_security(data_dir)
        seconds = local_broker.wait_ready(bootstrap, process, security=security)
        typer.echo(
            f"Kafka {local_broker.kafka_version()} ready on {bootstrap} in {seconds:.1f} s",
            err=True,
        )
        if auth:
            prefix = Settings().topic_prefix
            local_broker.grant_acls(data_dir, bootstrap, prefix)
            typer.echo(BrokerCredentials.of(data_dir).usage(prefix), err=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    except BatchlineError as exc:
        local_broker.stop(process)
        _fail(exc)
    finally:
        local_broker.stop(process)


@app.command()
def worker() -> None:
    """Run one Faust worker (configured by the BATCHLINE_* settings)."""
    from schemas.settings import Settings
    from streams.errors import WorkerCannotStart
    from streams.worker import run_worker
    from transforms.errors import SpecError

    try:
        run_worker(Settings())
    except (BatchlineError, SpecError, WorkerCannotStart) as exc:
        _fail(exc)


@app.command()
def api(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API with uvicorn."""
    import uvicorn

    from schemas.settings import Settings
    from telemetry.logs import logging_config

    settings = Settings()
    _check_pipelines(settings)
    level = settings.log_level
    if workers > 1:
        _prepare_multiprocess_metrics()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=logging_config(level, settings.log_format),
        access_log=False,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the API limits failed
        # authentications per client address, so only proxies named in the settings are.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )


def _check_pipelines(settings: Settings) -> None:
    """A bad spec file stops the API here, in one line, not in a traceback from its lifespan."""
    from transforms import PipelineRegistry
    from transforms.errors import SpecError

    try:
        PipelineRegistry.load(
            settings.pipelines_dir, hash_secret=settings.hash_secret.get_secret_value().encode()
        )
    except SpecError as exc:
        _fail(exc)


def _prepare_multiprocess_metrics() -> None:
    """Several uvicorn workers share their metrics through files (prometheus multiprocess)."""
    import shutil
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is None:
        directory = tempfile.mkdtemp(prefix="batchline-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    # Samples of an earlier run's processes would be added to this run's.
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    api_key: Annotated[
        str | None, typer.Option(help="Development API key (default: a new random one).")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Broker log, SQLite store, worker state.")] = Path(
        "data"
    ),
    kafka: Annotated[
        str | None, typer.Option(help="Use this broker (HOST:PORT) instead of starting one.")
    ] = None,
    kafka_port: Annotated[int, typer.Option(help="Port of the broker it starts.")] = 9092,
    auth: Annotated[bool, typer.Option("--auth", help=AUTH_HELP)] = False,
) -> None:
    """Start a broker, a worker and the API together; Ctrl-C stops all of them."""
    from batchline.devstack import run_dev_stack

    if auth and kafka is not None:
        _fail(
            BatchlineError(
                "--auth starts a broker of its own; to use the broker at --kafka, set "
                "BATCHLINE_KAFKA_SECURITY_PROTOCOL, _USERNAME and _PASSWORD instead"
            )
        )
    try:
        code = run_dev_stack(
            port=port,
            api_key=api_key,
            data_dir=data_dir,
            kafka=kafka,
            kafka_port=kafka_port,
            auth=auth,
        )
        sys.exit(code)
    except BatchlineError as exc:
        _fail(exc)


def main() -> None:
    # Settings read relative paths (data/, the SQLite file) from the working directory.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
