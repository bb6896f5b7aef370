"""Personal orders end to end on the virtual line: ``liquidfab produce``.

``produce(node, folder, orders=N)`` plays a world's production (``world.yaml:
production``) through the node, every step a signed message checked and settled there
as a remote party's would be:

1. **configure**: generated customers pick random partial configurations; the
   configurator completes each at the lowest price (customers differ: lot size one).
2. **place**: each customer signs its order with the price in escrow (the operator mints
   the customer's money first); the node validates the configuration and compiles the
   build program (its time is split into *validate* and *compile*). The manufacturer
   accepts.
3. **sequence**: each batch is sequenced by ``plan_line`` with the layout's summed
   setup matrix, the world's ratio windows and due positions (placement order, with
   slack), then marked scheduled.
4. **supply**: stock is checked against the batch's kits plus expected scrap; parts
   below the reorder point are bought from their suppliers through supply contracts
   (``supply_run``), the suppliers answering automatically.
5. **execute**: orders go in-production and the batch runs on the ``VirtualLine`` in
   the planned sequence, behind the units coming back from rework. A unit that fails
   a step goes to rework (built again in the next pass; its parts are kept) up to
   ``rework_limit`` times, then is scrapped and a fresh unit started (a new kit is
   drawn). A unit not built after ``max_passes`` leaves its order in production.
6. **record**: the manufacturer signs ``built`` with the build record and the did of a
   device key made at the flashing station; the node records the unit and draws its
   parts from stock.
7. **settle**: the customer confirms delivery, posting the escrow to the manufacturer.

Simulated time: each pass starts when the previous one ends (the line runs empty
between batches); lead time is from a batch's release to the unit's last step.
Wall-clock seconds per stage are measured, so the slow stage is visible.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from liquidfab.errors import LiquidfabError
from liquidfab.factory.model import Layout, load_layout
from liquidfab.identity import Keystore, SigningKey
from liquidfab.node.core import Node
from liquidfab.node.world import World, WorldProduction, load_world
from liquidfab.product import load_product
from liquidfab.product.resolved import Resolved
from liquidfab.production import order_messages, orders, runs, stock
from liquidfab.production.configurations import Configurations
from liquidfab.production.mixed_model import LineProblem, Order, plan_line
from liquidfab.production.order_messages import ORDER, ORDER_STATUS, price_units
from liquidfab.production.produce_report import ProductionReport
from liquidfab.production.program import BuildProgram, json_choices
from liquidfab.production.supply_run import ReorderPolicy, SupplierAgent, negotiate
from liquidfab.production.virtual_line import LineRun, VirtualLine, variant_of
from liquidfab.protocol import Envelope, SettlementLeg, sign_message, uuid7

__all__ = ["ProduceSettings", "ProductionReport", "produce"]

ESCROW_TIMEOUT = 30 * 24 * 3600
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ProduceSettings:
    """How a run goes. ``scrap_allowance`` is the share of extra kits stock must cover."""

    orders: int
    seed: int = 0
    batch: int = 100
    fault_probability: float = 0.01
    rework_limit: int = 1
    max_passes: int = 6
    plan_seconds: float = 2.0
    due_slack: int = 10
    scrap_allowance: float = 0.05
    bundles: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.orders <= 1_000_000:
            raise ValueError("orders is between 1 and 1,000,000")
        if not 1 <= self.batch <= 10_000:
            raise ValueError("batch is between 1 and 10,000")
        if not 0 <= self.fault_probability < 1:
            raise ValueError("fault_probability is in [0, 1)")
        if self.rework_limit < 0 or self.max_passes < 1 or self.plan_seconds <= 0:
            raise ValueError("rework_limit >= 0, max_passes >= 1 and plan_seconds > 0")


# --- the run -------------------------------------------------------------------------------


@dataclass
class _Placed:
    id: str
    customer: SigningKey
    escrow: SettlementLeg
    amount: int
    price: Decimal
    resolved: Resolved
    program: BuildProgram | None = None
    failures: int = 0
    scrapped: int = 0
    built: Any = None  # the successful UnitRun
    released: float = 0.0  # simulated time its batch went onto the line
    finish: float = 0.0
    passes: int = 0


@contextmanager
def _timed(stages: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall seconds of the block to ``stages[stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[stage] += time.perf_counter() - started


def _accept(node: Node, message: Envelope, what: str) -> dict[str, Any]:
    outcome = node.submit(message)
    if not outcome.accepted:
        raise LiquidfabError(f"{what} was refused: {outcome.body.get('detail')}")
    return outcome.body["result"]


def _production(world: World) -> WorldProduction:
    if world.production is None:
        raise LiquidfabError("this world has no production section in world.yaml")
    return world.production


def _setup_matrix(layout: Layout) -> np.ndarray:
    k = len(layout.variants)
    total = np.zeros((k, k))
    for i in layout.line:
        st = layout.stations[i]
        if st.setup is not None:
            total += st.setup
    return total


def _options(program: BuildProgram) -> frozenset[str]:
    return frozenset(f"{k}={v}" for k, v in program.choices.items())


class _Run:
    def __init__(
        self, node: Node, folder: Path, settings: ProduceSettings, progress: Progress | None
    ) -> None:
        self.node = node
        self.settings = settings
        self.progress = progress or (lambda stage, done, total: None)
        world = load_world(folder)
        self.spec = _production(world)
        keystore: Keystore = world.keystore(folder)
        self.keystore = keystore
        self.maker = keystore.get_or_create(self.spec.manufacturer)
        operators = world.operator_keys()
        if not operators:
            raise LiquidfabError("the world has no operator to mint customers' money")
        self.operator = keystore.get_or_create(operators[0])
        self.product = load_product(folder / self.spec.product)
        self.layout = load_layout(folder / self.spec.factory)
        if not self.layout.variants:
            raise LiquidfabError(f"{self.spec.factory}: the layout has no mix to build")
        published = node.products.get(self.product.id, self.product.version)
        if published is None:
            raise LiquidfabError(
                f"{self.product.id}@{self.product.version} is not published on this node; "
                "start it with the world (liquidfab up --world) first"
            )
        self.suppliers: dict[str, SupplierAgent] = {}
        names = {}
        for item in world.products:
            if item.file == self.spec.product:
                names = item.suppliers
        self.published = published
        prices: dict[str, dict[str, Decimal]] = defaultdict(dict)
        parts_of: dict[str, str] = {}
        for part in self.product.spec.parts:
            if part.supplier in names:
                prices[part.supplier][part.id] = Decimal(str(part.unit_cost))
                parts_of[part.id] = part.supplier
        for supplier_id, key_name in names.items():
            agent = SupplierAgent(keystore.get_or_create(key_name), prices[supplier_id])
            self.suppliers[supplier_id] = agent
        self.agent_of = {p: self.suppliers[s] for p, s in parts_of.items()}
        self.policy = ReorderPolicy(self.spec.reorder.point, self.spec.reorder.lot)
        info = node.network_ledger()
        self.report = ProductionReport(run_id=uuid7(), ledger=info.name, decimals=info.decimals)
        self.rng = np.random.default_rng(settings.seed)
        self.configs = Configurations(self.product, self.rng)
        self.customers = self._customers(self.spec.customers)
        self.sim_now = 0.0
        self.trace_units: list[dict[str, Any]] = []
        self.serials: dict[str, str] = {}
        self.problem_setup = _setup_matrix(self.layout)
        self.passes = 0

    def _time(self, stage: str) -> Any:
        return _timed(self.report.stages, stage)

    def _customers(self, n: int) -> list[SigningKey]:
        keys = []
        for i in range(1, n + 1):
            key = self.keystore.get_or_create(f"customer-{i:03d}")
            self.node.register(key, "owner", f"Customer {i:03d}")
            if not self.node.ledger.lookup_accounts([f"{key.did}/wallet"]):
                self.node.open_account(key)
            keys.append(key)
        return keys

    # -- stages --------------------------------------------------------------------------

    def configure(self, n: int, start: int) -> list[tuple[str, SigningKey, Resolved]]:
        with self._time("configure"):
            out = []
            for i in range(n):
                customer = self.customers[int(self.rng.integers(len(self.customers)))]
                order_id = f"{self.report.run_id[-8:]}-{start + i + 1:06d}"
                out.append((order_id, customer, self.configs.draw()))
            return out

    def place(self, drafts: list[tuple[str, SigningKey, Resolved]]) -> list[_Placed]:
        decimals = self.report.decimals
        placed: list[_Placed] = []
        with self._time("settle"):  # the customers' money arrives
            need: Counter[str] = Counter()
            for _, customer, resolved in drafts:
                need[customer.did] += price_units(resolved.price, decimals) or 0
            keys = {c.did: c for _, c, _ in drafts}
            for did, amount in need.items():
                self.node.mint(self.operator, f"{did}/wallet", amount)
                self.report.minted_units += amount
        before = dict(order_messages.TIMINGS)
        started = time.perf_counter()
        for order_id, customer, resolved in drafts:
            amount = price_units(resolved.price, decimals)
            if amount is None:
                raise LiquidfabError(f"{order_id}: price {resolved.price} is not exact")
            leg = SettlementLeg(
                id=uuid7(),
                debit_account=f"{customer.did}/wallet",
                credit_account=f"{self.maker.did}/wallet",
                ledger=self.report.ledger,
                amount=str(amount),
                code="order",
                flags=["pending"],
                timeout_seconds=ESCROW_TIMEOUT,
            )
            data = {
                "order": order_id,
                "product": self.product.id,
                "version": self.product.version,
                "choices": json_choices(resolved.choices),
            }
            _accept(self.node, sign_message(customer, ORDER, data, settlement=[leg]), order_id)
            _accept(self.node, self._status(order_id, "accepted"), f"{order_id} accepted")
            placed.append(
                _Placed(order_id, keys[customer.did], leg, amount, resolved.price, resolved)
            )

        def programs(conn: Any) -> list[dict[str, Any]]:
            return [orders.get_order(conn, p.id)["program"] for p in placed]

        # the line builds the program the node compiled and holds, nothing else
        for p, document in zip(placed, self.node.database.read(programs), strict=True):
            p.program = BuildProgram.model_validate(document)
        node_side = {
            k: order_messages.TIMINGS[k] - before.get(k, 0.0) for k in ("validate", "compile")
        }
        self.report.stages["validate"] += node_side["validate"]
        self.report.stages["compile"] += node_side["compile"]
        self.report.stages["place"] += time.perf_counter() - started - sum(node_side.values())
        self.report.orders += len(placed)
        return placed

    def _status(self, order_id: str, state: str, **data: Any) -> Envelope:
        payload = {"order": order_id, "state": state, **data}
        return sign_message(self.maker, ORDER_STATUS, payload)

    def sequence(self, batch: list[_Placed]) -> list[_Placed]:
        with self._time("sequence"):
            orders = [
                Order(
                    id=p.id,
                    variant=variant_of(self.layout, p.program),
                    options=_options(p.program),
                    due=float(i + 1 + self.settings.due_slack),
                )
                for i, p in enumerate(batch)
            ]
            problem = LineProblem(
                orders=tuple(orders),
                rules=dict(self.spec.windows),
                setup=self.problem_setup,
            )
            plan = plan_line(
                problem, time_limit=self.settings.plan_seconds, seed=self.settings.seed
            )
            self.report.window_violations += plan.window_violations
            by_id = {p.id: p for p in batch}
            ordered = [by_id[i] for i in plan.order]
        with self._time("place"):
            for position, p in enumerate(ordered, 1):
                note = f"position {position} of {len(ordered)}"
                _accept(self.node, self._status(p.id, "scheduled", note=note), p.id)
        return ordered

    def supply(self, batch: list[_Placed], allowance: float) -> None:
        """Buy what ``batch`` will draw (a kit per unit and per unit scrapped, plus the
        ``allowance`` share for scrap to come) where stock would fall below the point."""
        if not batch:
            return
        with self._time("supply"):
            needs: Counter[str] = Counter()
            for p in batch:
                for part, line in stock.kit_of(p.resolved.bom).items():
                    if part in self.agent_of:
                        needs[part] += line.milli * (1 + p.scrapped)
            # a unit's worth of a part: its mean need per unit of the batch, so parts few
            # configurations use are bought in small lots
            per_unit = {part: math.ceil(n / len(batch)) for part, n in needs.items()}
            have = self.node.database.read(lambda c: stock.on_hand(c, self.maker.did, list(needs)))
            for part in sorted(needs):
                want = self.policy.quantity(
                    per_unit[part], have.get(part, 0), math.ceil(needs[part] * (1 + allowance))
                )
                if want <= 0:
                    continue
                done = negotiate(
                    self.node.submit,
                    self.maker,
                    self.agent_of[part],
                    part,
                    Decimal(want) / 1000,
                    ledger=self.report.ledger,
                )
                self.report.supply_contracts += 1
                self.report.supply_units += done["amount"]

    def execute(
        self, batch: list[_Placed], carried: list[_Placed]
    ) -> tuple[list[_Placed], list[_Placed]]:
        """One pass of the line: units back from rework or scrap first, then the batch in
        its planned order; the units built, and those to go round again."""
        with self._time("place"):
            for p in batch:
                _accept(self.node, self._status(p.id, "in-production"), p.id)
        with self._time("execute"):
            units = [*carried, *batch]
            for p in batch:
                p.released = self.sim_now
            line = VirtualLine(
                self.layout,
                seed=self.settings.seed * 1_000_003 + self.passes,
                fault_probability=self.settings.fault_probability,
            )
            self.passes += 1
            # a unit's draws are keyed by its place in this list, kept in id order, so
            # they do not depend on the sequence the planner found within its time limit
            stable = sorted(units, key=lambda p: p.id)
            run = line.run([p.program for p in stable], [p.id for p in units])
            retry = self._collect(run, stable)
            self.sim_now += run.makespan
        again = []
        for p in retry:
            if p.passes >= self.settings.max_passes:
                self.report.unfinished.append(p.id)
            else:
                again.append(p)
        return [p for p in units if p.built is not None], again

    def _collect(self, run: LineRun, waiting: list[_Placed]) -> list[_Placed]:
        self.report.setup_seconds += run.total_setup_seconds
        retry = []
        offset = self.sim_now
        for unit in run.units:
            p = waiting[unit.program]
            p.passes += 1
            visits: dict[str, list[float]] = {}
            for r in unit.record.results:
                span = visits.setdefault(r.station, [r.started + offset, r.finished + offset])
                span[0] = min(span[0], r.started + offset)
                span[1] = max(span[1], r.finished + offset)
            self.trace_units.append(
                {
                    "order": p.id,
                    "serial": None,
                    "variant": unit.variant,
                    "ok": unit.ok,
                    "visits": [[s, a, b] for s, (a, b) in visits.items()],
                }
            )
            if unit.ok:
                p.built = unit
                p.finish = offset + unit.finish
                self.report.lead_times.append(p.finish - p.released)
            else:
                p.failures += 1
                if p.failures > self.settings.rework_limit:
                    p.scrapped += 1
                    p.failures = 0
                    self.report.scrapped += 1
                else:
                    self.report.reworked += 1
                retry.append(p)
        return retry

    def record(self, built: list[_Placed]) -> None:
        with self._time("record"):
            for p in built:
                device = SigningKey.generate()  # made at the flashing station
                message = self._status(
                    p.id,
                    "built",
                    build=p.built.record.model_dump(mode="json"),
                    device_did=device.did,
                    scrapped=p.scrapped,
                )
                result = _accept(self.node, message, f"{p.id} built")
                self.serials[p.id] = result["serial"]
                self.report.units_built += 1
                self.report.unit_costs.append(p.resolved.unit_cost)
                if self.settings.bundles is not None:
                    self._bundle(result["serial"], device, p)

    def _bundle(self, serial: str, device: SigningKey, p: _Placed) -> None:
        import base64

        folder = self.settings.bundles
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        seed = base64.urlsafe_b64encode(device.seed).rstrip(b"=").decode("ascii")
        bundle = {
            "serial": serial,
            "device_did": device.did,
            "key_type": "Ed25519",
            "private_key_seed": seed,
            "product": self.product.id,
            "version": self.product.version,
            "order": p.id,
            "manufacturer": self.maker.did,
        }
        path = folder / f"{serial}.json"
        path.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)

    def settle(self, built: list[_Placed]) -> None:
        with self._time("settle"):
            for p in built:
                leg = SettlementLeg(
                    id=uuid7(),
                    debit_account=p.escrow.debit_account,
                    credit_account=p.escrow.credit_account,
                    ledger=p.escrow.ledger,
                    amount=None,
                    code="order",
                    flags=["post_pending"],
                    pending_id=p.escrow.id,
                )
                data = {"order": p.id, "state": "delivered"}
                _accept(
                    self.node,
                    sign_message(p.customer, ORDER_STATUS, data, settlement=[leg]),
                    f"{p.id} delivered",
                )
                self.report.escrows_posted += 1
                self.report.escrow_units += p.amount
                self.report.prices_delivered += p.price

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> ProductionReport:
        started_us = time.time_ns() // 1000
        t0 = time.perf_counter()
        total = self.settings.orders
        done = 0
        carried: list[_Placed] = []
        while done < total or carried:
            batch: list[_Placed] = []
            if done < total:
                n = min(self.settings.batch, total - done)
                drafts = self.configure(n, done)
                batch = self.sequence(self.place(drafts))
                self.supply(batch, self.settings.scrap_allowance)
                done += n
            built, carried = self.execute(batch, carried)
            self.supply(built, 0.0)  # units scrapped on the way drew extra kits
            self.record(built)
            self.settle(built)
            self.progress("orders", done, total)
        self.report.simulated_seconds = self.sim_now
        self.report.wall_seconds = time.perf_counter() - t0
        self._save(started_us)
        self.node.checkpoint()
        return self.report

    def _save(self, started_us: int) -> None:
        for unit in self.trace_units:
            if unit["ok"]:
                unit["serial"] = self.serials.get(unit["order"])
        trace = {
            "horizon": self.sim_now,
            "stations": [
                {"id": st.id, "name": st.name, "servers": st.servers}
                for st in (self.layout.stations[i] for i in self.layout.line)
            ],
            "units": self.trace_units,
        }
        row = {
            "id": self.report.run_id,
            "manufacturer": self.maker.did,
            "layout_id": self.layout.id,
            "layout_version": self.layout.version,
            "summary": self.report.to_dict(),
            "trace": trace,
            "started_us": started_us,
            "finished_us": time.time_ns() // 1000,
        }
        self.node.database.write(lambda c: runs.save_run(c, row))


def produce(
    node: Node,
    folder: str | Path,
    settings: ProduceSettings,
    *,
    progress: Progress | None = None,
) -> ProductionReport:
    """Run ``settings.orders`` personal orders end to end in the world in ``folder``,
    whose node ``node`` is (opened by ``open_world_node``); the report.

    Raises ``LiquidfabError`` when the world has no production section, its product is
    not published on the node, or the node refuses a step (the message names it).
    """
    return _Run(node, Path(folder), settings, progress).run()
