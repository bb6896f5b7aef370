"""Three OPC UA stations on loopback, driven through the station interface.

Each station is a real asyncua server (its own port) performing steps on a simulated
machine; the executor talks to them through ``OpcUaStation`` clients exactly as it talks
to simulated stations in process, and gets the same results.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from liquidfab.factory import Lognormal
from liquidfab.production.executor import Executor
from liquidfab.production.opcua_station import (
    OpcUaStation,
    OpcUaStationServer,
    station_namespace,
)
from liquidfab.production.program import BuildProgram, ProgramStep
from liquidfab.production.stations import (
    SimulatedStation,
    StationFault,
    StationLimits,
    StationUnreachable,
)

STATIONS = ("frame-prep", "paint", "test-flash")
LIMITS = StationLimits(
    step_timeout=5, retries=2, retry_backoff=0.05, connect_timeout=2, request_timeout=2
)
RATE = 0.0005  # wall seconds per process second: a 40 s step takes 20 ms


def program(order: str, seconds: float = 40) -> BuildProgram:
    """A small program: five steps over the three stations, one station visited twice."""
    plan = [
        ("frame-prep", "face", {"jig": "M", "mount_bolt_nm": 10}),
        ("paint", "coat", {"colour": "traffic-red", "ral_code": 3020, "powder_kg": 0.45}),
        ("frame-prep", "mask", {}),
        ("test-flash", "flash", {"speed_limit_kmh": 25, "anti_theft": True}),
        ("test-flash", "roller-test", {"brake_force_n": 500}),
    ]
    return BuildProgram(
        product="com.example.bike",
        product_version="1.0.0",
        product_digest="ab" * 32,
        order_id=order,
        choices={"frame_colour": "traffic-red", "frame_size": "M"},
        features=["anti-theft"],
        steps=[
            ProgramStep(
                index=i,
                station=station,
                operation=op,
                name=op,
                parameters=params,
                expected_seconds=seconds,
            )
            for i, (station, op, params) in enumerate(plan)
        ],
    )


def machine(station: str, seed: int, **kwargs) -> SimulatedStation:
    return SimulatedStation(station, process=Lognormal(mean=1, cv=0.2), seed=seed, **kwargs)


@contextlib.asynccontextmanager
async def serving(machines):
    async with contextlib.AsyncExitStack() as stack:
        servers = {}
        for m in machines:
            servers[m.id] = await stack.enter_async_context(OpcUaStationServer(m.id, machine=m))
        yield servers


@contextlib.asynccontextmanager
async def clients(servers, limits=LIMITS):
    async with contextlib.AsyncExitStack() as stack:
        yield {
            sid: await stack.enter_async_context(OpcUaStation(sid, srv.url, limits=limits))
            for sid, srv in servers.items()
        }


async def wait_for(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def test_three_opc_ua_stations_build_units_like_the_simulated_line():
    programs = [program(f"order-{n}") for n in range(4)]

    async def over_opc_ua():
        machines = [machine(s, seed, real_time_factor=RATE) for seed, s in enumerate(STATIONS)]
        async with serving(machines) as servers:
            ports = {srv.port for srv in servers.values()}
            assert len(ports) == 3 and 0 not in ports
            async with clients(servers) as line:
                records = [await Executor(line).build(p) for p in programs]
                # a client pointed at the wrong server finds out before doing anything
                wrong = OpcUaStation("paint", servers["frame-prep"].url, limits=LIMITS)
                with pytest.raises(StationFault, match="is not station paint"):
                    await wrong.run(programs[0].steps[1], programs[0])
            # a port already served is refused with our error, not the socket's
            taken = OpcUaStationServer("paint", port=servers["paint"].port)
            with pytest.raises(StationFault, match="cannot serve station paint") as e:
                await taken.start()
            assert isinstance(e.value.__cause__, OSError)
            states = {sid: srv.state for sid, srv in servers.items()}
            runs = {sid: srv.runs for sid, srv in servers.items()}
        return records, states, runs

    async def in_process():
        line = {s: machine(s, seed) for seed, s in enumerate(STATIONS)}
        return [await Executor(line).build(p) for p in programs]

    records, states, runs = asyncio.run(over_opc_ua())
    assert all(r.ok for r in records)
    for record, p in zip(records, programs, strict=True):
        assert record.program_digest == p.digest()
        assert [(r.station, r.step, r.operation) for r in record.results] == [
            (s.station, s.index, s.operation) for s in p.steps
        ]
        mount = record.results[0].measurements["mount_bolt_nm"]
        assert mount == pytest.approx(10, rel=0.05)
    # the same machines with the same seeds give the same results in process
    assert records == asyncio.run(in_process())
    assert states == dict.fromkeys(STATIONS, "done")
    assert runs == {"frame-prep": 8, "paint": 4, "test-flash": 8}


def test_a_machine_fault_is_a_failed_step_and_the_build_stops():
    p = program("order-fault")

    async def scenario():
        machines = [
            machine("frame-prep", 1, real_time_factor=RATE),
            machine("paint", 2, real_time_factor=RATE, fault_probability=1.0),
            machine("test-flash", 3, real_time_factor=RATE),
        ]
        async with serving(machines) as servers, clients(servers) as line:
            record = await Executor(line).build(p)
            return record, {sid: (srv.state, srv.runs) for sid, srv in servers.items()}

    record, servers = asyncio.run(scenario())
    assert not record.ok and record.failed_step == 1 and not record.station_fault
    assert [r.ok for r in record.results] == [True, False]
    assert "fault at paint during coat" in record.reason
    assert servers == {"frame-prep": ("done", 1), "paint": ("fault", 1), "test-flash": ("idle", 0)}


def test_a_station_that_goes_away_mid_step_fails_the_step_cleanly():
    p = program("order-lost", seconds=2000)  # one second of wall time per step

    async def scenario():
        loop = asyncio.get_running_loop()
        server = OpcUaStationServer(
            "frame-prep", machine=machine("frame-prep", 1, real_time_factor=RATE)
        )
        await server.start()
        async with OpcUaStation("frame-prep", server.url, limits=LIMITS) as client:
            first_step_only = BuildProgram.model_validate({**p.document(), "steps": [p.steps[0]]})
            build = asyncio.create_task(Executor({"frame-prep": client}).build(first_step_only))
            await wait_for(lambda: server.state == "running")
            await server.stop()
            lost_at = loop.time()
            record = await build
            elapsed = loop.time() - lost_at
            # the station stays away: the client keeps failing the same clean way
            with pytest.raises(StationUnreachable) as e:
                await client.run(p.steps[0], p)
        return record, elapsed, e.value

    record, elapsed, error = asyncio.run(scenario())
    assert not record.ok and record.failed_step == 0 and record.station_fault
    assert record.results == []
    assert "frame-prep unreachable for step 0 (face) after 3 attempts" in record.reason
    assert elapsed < 3  # retries with backoff, not a hang
    assert isinstance(error, StationFault)
    assert error.station == "frame-prep" and error.step == 0
    # the cause is kept, and it is ours: asyncua's exception stays inside the chain
    assert isinstance(error.__cause__, StationUnreachable)
    assert error.__cause__.__cause__ is not None


def test_a_station_back_within_the_retries_completes_the_step():
    p = program("order-retry", seconds=400)
    limits = StationLimits(
        step_timeout=5, retries=5, retry_backoff=0.25, connect_timeout=2, request_timeout=2
    )

    async def scenario():
        first = OpcUaStationServer("paint", machine=machine("paint", 1, real_time_factor=RATE))
        await first.start()
        port = first.port
        async with OpcUaStation("paint", first.url, limits=limits) as client:
            step = asyncio.create_task(client.run(p.steps[1], p))
            await wait_for(lambda: first.state == "running")
            await first.stop()  # power cycle: the PLC forgets the run and comes back
            second = OpcUaStationServer(
                "paint", port=port, machine=machine("paint", 1, real_time_factor=RATE)
            )
            async with second:
                result = await step
                return result, second.runs

    result, runs = asyncio.run(scenario())
    assert result.ok and result.step == 1 and result.operation == "coat"
    assert runs == 1  # the step ran again on the restarted station


def test_a_dropped_connection_resumes_the_running_step_without_repeating_it():
    p = program("order-blip", seconds=1000)  # half a second of wall time

    async def scenario():
        async with (
            OpcUaStationServer(
                "test-flash", machine=machine("test-flash", 1, real_time_factor=RATE)
            ) as server,
            OpcUaStation("test-flash", server.url, limits=LIMITS) as client,
        ):
            step = asyncio.create_task(client.run(p.steps[3], p))
            await wait_for(lambda: server.state == "running")
            dropped = server.disconnect_clients()
            result = await step
            return result, dropped, server.runs

    result, dropped, runs = asyncio.run(scenario())
    assert dropped == 1
    assert result.ok and result.operation == "flash"
    assert runs == 1  # the client found its run still going and waited for it


def test_namespace_per_station():
    assert station_namespace("paint") == "urn:liquidfab:station:paint"
