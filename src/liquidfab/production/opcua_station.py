"""Stations over OPC UA: a server per station, as a PLC gateway exposes it, and the
client that drives it through the station interface.

Each station serves namespace ``urn:liquidfab:station:<id>`` with one object,
``Station`` (node ids are strings, ``ns=<i>;s=Station.<Name>``):

=============  ======  ======  ===============================================
node           type    access  meaning
=============  ======  ======  ===============================================
``Program``    String  write   the build program, as JSON
``Step``       Int32   write   the index of the step to perform
``Parameters`` String  write   that step's parameters, as JSON (must match)
``State``      String  read    ``idle`` | ``running`` | ``done`` | ``fault``
``Result``     String  read    the last step result (``StepResult``), as JSON
``Run``        String  read    id of the run ``Start`` last began
``Message``    String  read    why the last ``Start`` was refused, or the fault
``Start()``    method          begin the step; returns the run id. Refused with
                               ``BadInvalidArgument`` (a program, step or
                               parameters that do not fit this station) or
                               ``BadInvalidState`` (a step already running)
=============  ======  ======  ===============================================

The client writes Program, Step and Parameters, calls ``Start``, polls ``State`` until
``done`` or ``fault`` and reads ``Result``. When the connection drops it reconnects; if
the server still knows the run it started (same ``Run``), it waits for that run
instead of starting the step again. asyncua's exceptions are translated in one place,
``_asyncua_errors``, and kept as the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asyncua import Client, Node, Server, ua
from pydantic import ValidationError

from liquidfab.production.program import BuildProgram, ProgramStep
from liquidfab.production.stations import (
    SimulatedStation,
    Station,
    StationFault,
    StationLimits,
    StationUnreachable,
    StepRefused,
    StepResult,
)

__all__ = ["STATES", "OpcUaStation", "OpcUaStationServer", "station_namespace"]

#: The values of a station's ``State`` variable.
STATES = ("idle", "running", "done", "fault")

_VARIABLES = {
    "Program": (ua.VariantType.String, "", True),
    "Step": (ua.VariantType.Int32, 0, True),
    "Parameters": (ua.VariantType.String, "{}", True),
    "State": (ua.VariantType.String, "idle", False),
    "Result": (ua.VariantType.String, "", False),
    "Run": (ua.VariantType.String, "", False),
    "Message": (ua.VariantType.String, "", False),
}

# Status codes that mean "the conversation broke", not "the station said no".
_COMMUNICATION = frozenset(
    getattr(ua.StatusCodes, name)
    for name in (
        "BadTimeout",
        "BadRequestTimeout",
        "BadRequestInterrupted",
        "BadConnectionClosed",
        "BadCommunicationError",
        "BadNoCommunication",
        "BadNotConnected",
        "BadServerNotConnected",
        "BadServerHalted",
        "BadShutdown",
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadSecureChannelClosed",
        "BadSecureChannelIdInvalid",
        "BadTcpInternalError",
    )
)


def station_namespace(station: str) -> str:
    """The OPC UA namespace URI a station's server publishes its nodes in."""
    return f"urn:liquidfab:station:{station}"


def _string(value: str) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, ua.VariantType.String))


def _parameters_json(step: ProgramStep) -> str:
    return json.dumps(step.model_dump(mode="json")["parameters"], sort_keys=True)


class OpcUaStationServer:
    """An OPC UA server for one station, performing steps on an inner ``machine``.

    The machine is any ``Station`` with the same id; by default a ``SimulatedStation``
    that waits ``real_time_factor`` of each step's process time in wall time. Use it as
    an async context manager, or call ``start`` and ``stop``. ``port`` 0 takes a free
    port; ``port`` and ``url`` give the one bound once started.
    """

    def __init__(
        self,
        station: str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        machine: Station | None = None,
        real_time_factor: float = 0.001,
    ) -> None:
        self.station = station
        self.machine = machine or SimulatedStation(station, real_time_factor=real_time_factor)
        if self.machine.id != station:
            raise ValueError(f"the machine is station {self.machine.id}, not {station}")
        self.host = host
        self._port = port
        self._server: Server | None = None
        self._nodes: dict[str, Node] = {}
        self._task: asyncio.Task[None] | None = None
        self._state = "idle"
        self.runs = 0

    @property
    def namespace(self) -> str:
        return station_namespace(self.station)

    @property
    def port(self) -> int:
        """The TCP port served (the bound one once started)."""
        return self._port

    @property
    def url(self) -> str:
        """The endpoint URL clients connect to."""
        return f"opc.tcp://{self.host}:{self._port}/"

    @property
    def state(self) -> str:
        """The current value of ``State``."""
        return self._state

    async def __aenter__(self) -> OpcUaStationServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the address space and listen; raises StationFault if it cannot."""
        if self._server is not None:
            return
        server = Server()
        try:
            await server.init()
            await server.set_application_uri(self.namespace)
            server.set_server_name(f"liquidfab station {self.station}")
            server.set_endpoint(self.url)
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            # no CurrentTime ticker: a station's clock is its results' (and stop is prompt)
            server.disable_clock()
            idx = await server.register_namespace(self.namespace)
            obj = await server.nodes.objects.add_object(
                ua.NodeId("Station", idx), ua.QualifiedName("Station", idx)
            )
            for name, (vtype, initial, writable) in _VARIABLES.items():
                node = await obj.add_variable(
                    ua.NodeId(f"Station.{name}", idx),
                    ua.QualifiedName(name, idx),
                    initial,
                    varianttype=vtype,
                )
                if writable:
                    await node.set_writable()
                self._nodes[name] = node
            await obj.add_method(
                ua.NodeId("Station.Start", idx),
                ua.QualifiedName("Start", idx),
                self._on_start,
                [],
                [ua.VariantType.String],
            )
            await server.start()
        except (OSError, ua.UaError) as e:
            with contextlib.suppress(Exception):
                await server.stop()
            raise StationFault(
                f"cannot serve station {self.station} on {self.host}:{self._port}: {e}",
                station=self.station,
            ) from e
        if server.bserver is not None:
            self._port = server.bserver.port
        self._server = server
        self._state = "idle"

    async def stop(self) -> None:
        """Stop the machine's current step (if any) and close every connection."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                await server.stop()

    def disconnect_clients(self) -> int:
        """Close every client connection, as a network failure would; the station and
        a step it is running carry on. Returns how many connections were closed."""
        if self._server is None:
            return 0
        transports = list(self._server.iserver.asyncio_transports)
        for transport in transports:
            transport.close()
        return len(transports)

    async def _write(self, **values: str) -> None:
        for name, value in values.items():
            await self._nodes[name].write_value(ua.Variant(value, ua.VariantType.String))
        if "State" in values:
            self._state = values["State"]

    async def _refuse(self, code: int, message: str) -> ua.StatusCode:
        await self._write(Message=message)
        return ua.StatusCode(code)

    async def _on_start(self, parent: ua.NodeId) -> list[ua.Variant] | ua.StatusCode:
        if self._task is not None and not self._task.done():
            return await self._refuse(
                ua.StatusCodes.BadInvalidState, "a step is running; wait until it is done"
            )
        text = await self._nodes["Program"].read_value()
        index = await self._nodes["Step"].read_value()
        params = await self._nodes["Parameters"].read_value()
        bad = ua.StatusCodes.BadInvalidArgument
        try:
            program = BuildProgram.model_validate_json(text or "")
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "Program"
            return await self._refuse(
                bad, f"Program is not a build program: {where}: {first['msg']}"
            )
        if not 0 <= index < len(program.steps):
            return await self._refuse(bad, f"the program has no step {index}")
        step = program.steps[index]
        if step.station != self.station:
            return await self._refuse(
                bad, f"step {index} is for station {step.station}, not {self.station}"
            )
        try:
            same = json.loads(params or "null") == json.loads(_parameters_json(step))
        except ValueError:
            same = False
        if not same:
            return await self._refuse(bad, f"Parameters differ from step {index} of the Program")
        run = uuid.uuid4().hex
        self.runs += 1
        await self._write(Run=run, Result="", Message="", State="running")
        self._task = asyncio.create_task(self._perform(step, program))
        return [ua.Variant(run, ua.VariantType.String)]

    async def _perform(self, step: ProgramStep, program: BuildProgram) -> None:
        try:
            result = await self.machine.run(step, program)
        except StationFault as e:
            now = self.machine.now()
            result = StepResult(
                station=self.station,
                program_digest=program.digest(),
                step=step.index,
                operation=step.operation,
                ok=False,
                started=now,
                finished=now,
                message=str(e),
            )
        await self._write(
            Result=result.model_dump_json(),
            Message=result.message,
            State="done" if result.ok else "fault",
        )


@dataclass
class _Connection:
    client: Client
    nodes: dict[str, Node]
    station: Node
    start: Node


class OpcUaStation(Station):
    """The station interface over OPC UA, for a station served at ``url``.

    Connects on first use (or with ``async with``), within ``limits.connect_timeout``;
    every request has ``limits.request_timeout``. ``State`` is polled every
    ``poll_interval`` seconds while a step runs. A lost connection is retried by
    ``Station.run`` (``limits.retries`` times with backoff), then raised as
    ``StationUnreachable``.
    """

    def __init__(
        self,
        id: str,
        url: str,
        *,
        limits: StationLimits | None = None,
        poll_interval: float = 0.01,
    ) -> None:
        super().__init__(id, limits=limits)
        if not poll_interval > 0:
            raise ValueError("poll_interval is a positive number of seconds")
        self.url = url
        self.poll_interval = poll_interval
        self._conn: _Connection | None = None
        # (program digest, step index, run id) of a step started and not yet collected
        self._pending: tuple[str, int, str] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> OpcUaStation:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection now (it is otherwise opened on first use)."""
        async with self._asyncua_errors(None):
            await self._connection()

    async def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._disconnect(conn.client)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _disconnect(self, client: Client) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.limits.request_timeout):
                await client.disconnect()

    def _drop(self) -> None:
        """Forget the connection; it is closed in the background."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close_later(conn.client)

    def _close_later(self, client: Client) -> None:
        client.disconnect_socket()
        task = asyncio.get_running_loop().create_task(self._disconnect(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @contextlib.asynccontextmanager
    async def _asyncua_errors(self, step: ProgramStep | None) -> AsyncIterator[None]:
        """The one place where asyncua's and the socket's exceptions become ours."""
        index = step.index if step is not None else None
        try:
            yield
        except StationFault:
            raise
        except ua.UaStatusCodeError as e:
            if e.code in _COMMUNICATION:
                self._drop()
                raise StationUnreachable(
                    f"station {self.id} at {self.url}: {e}", station=self.id, step=index
                ) from e
            raise StationFault(
                f"station {self.id} at {self.url} answered {type(e).__name__}: {e}",
                station=self.id,
                step=index,
            ) from e
        except (OSError, EOFError, ua.UaError) as e:  # OSError covers ConnectionError, TimeoutError
            self._drop()
            raise StationUnreachable(
                f"station {self.id} at {self.url}: {type(e).__name__}: {e or 'no answer'}",
                station=self.id,
                step=index,
            ) from e
        except asyncio.CancelledError:
            # cut off mid-request (the step timeout): the conversation is in an unknown state
            self._drop()
            raise
        except Exception as e:
            self._drop()
            raise StationFault(
                f"station {self.id} at {self.url}: unexpected {type(e).__name__}: {e}",
                station=self.id,
                step=index,
            ) from e

    async def _connection(self) -> _Connection:
        if self._conn is not None:
            return self._conn
        client = Client(self.url, timeout=self.limits.request_timeout)
        client.session_timeout = 600_000
        try:
            try:
                async with asyncio.timeout(self.limits.connect_timeout):
                    await client.connect()
                    namespaces = await client.get_namespace_array()
            except TimeoutError as e:
                raise StationUnreachable(
                    f"station {self.id}: no connection to {self.url} within "
                    f"{self.limits.connect_timeout:g} s",
                    station=self.id,
                ) from e
            namespace = station_namespace(self.id)
            if namespace not in namespaces:
                raise StationFault(
                    f"the OPC UA server at {self.url} is not station {self.id} "
                    f"(no namespace {namespace})",
                    station=self.id,
                )
        except BaseException:
            self._close_later(client)
            raise
        idx = namespaces.index(namespace)
        nodes = {name: client.get_node(ua.NodeId(f"Station.{name}", idx)) for name in _VARIABLES}
        self._conn = _Connection(
            client,
            nodes,
            client.get_node(ua.NodeId("Station", idx)),
            client.get_node(ua.NodeId("Station.Start", idx)),
        )
        return self._conn

    async def _execute(self, step: ProgramStep, program: BuildProgram) -> StepResult:
        digest = program.digest()
        async with self._asyncua_errors(step):
            conn = await self._connection()
            run = await self._resumable(conn, digest, step)
            if run is None:
                run = await self._start(conn, step, program, digest)
            return await self._collect(conn, step, run)

    async def _resumable(self, conn: _Connection, digest: str, step: ProgramStep) -> str | None:
        """The run id of this step, started on an earlier attempt and still known."""
        if self._pending is None or self._pending[:2] != (digest, step.index):
            return None
        current = await conn.nodes["Run"].read_value()
        return self._pending[2] if current == self._pending[2] else None

    async def _start(
        self, conn: _Connection, step: ProgramStep, program: BuildProgram, digest: str
    ) -> str:
        self._pending = None
        n = conn.nodes
        await conn.client.write_values(
            [n["Program"], n["Step"], n["Parameters"]],
            [
                _string(program.model_dump_json()),
                ua.DataValue(ua.Variant(step.index, ua.VariantType.Int32)),
                _string(_parameters_json(step)),
            ],
        )
        try:
            run = await conn.station.call_method(conn.start.nodeid)
        except ua.UaStatusCodeError as e:
            if e.code not in (ua.StatusCodes.BadInvalidArgument, ua.StatusCodes.BadInvalidState):
                raise
            why = await n["Message"].read_value()
            raise StepRefused(
                f"station {self.id} refused step {step.index} ({step.operation}): {why}",
                station=self.id,
                step=step.index,
            ) from e
        if not isinstance(run, str) or not run:
            raise StationFault(
                f"station {self.id} started step {step.index} without a run id",
                station=self.id,
                step=step.index,
            )
        self._pending = (digest, step.index, run)
        return run

    async def _collect(self, conn: _Connection, step: ProgramStep, run: str) -> StepResult:
        n = conn.nodes
        while True:
            state, current, text = await conn.client.read_values(
                [n["State"], n["Run"], n["Result"]]
            )
            if current != run:
                self._pending = None
                raise StationFault(
                    f"station {self.id} began another run while step {step.index} was running",
                    station=self.id,
                    step=step.index,
                )
            if state in ("done", "fault"):
                break
            if state != "running":
                raise StationFault(
                    f"station {self.id} reports State {state!r} during step {step.index}",
                    station=self.id,
                    step=step.index,
                )
            await asyncio.sleep(self.poll_interval)
        self._pending = None
        try:
            return StepResult.model_validate_json(text or "")
        except ValidationError as e:
            raise StationFault(
                f"station {self.id} sent a Result that is not a step result: "
                f"{e.errors()[0]['msg']}",
                station=self.id,
                step=step.index,
            ) from e
