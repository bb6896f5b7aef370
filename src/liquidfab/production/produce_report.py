"""What ``liquidfab produce`` measured: orders, units, time, lead times, money, and the
wall-clock seconds of each stage so the slow one is visible."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from liquidfab.product.resolved import money_text

__all__ = ["STAGES", "ProductionReport"]

STAGES = (
    "configure",
    "validate",
    "compile",
    "place",
    "sequence",
    "supply",
    "execute",
    "record",
    "settle",
)


@dataclass
class ProductionReport:
    """What a run did and measured (see ``text`` and ``to_dict``)."""

    run_id: str
    orders: int = 0
    units_built: int = 0
    unfinished: list[str] = field(default_factory=list)
    reworked: int = 0
    scrapped: int = 0
    simulated_seconds: float = 0.0
    setup_seconds: float = 0.0
    lead_times: list[float] = field(default_factory=list)
    window_violations: int = 0
    escrows_posted: int = 0
    escrow_units: int = 0
    prices_delivered: Decimal = Decimal(0)
    supply_contracts: int = 0
    supply_units: int = 0
    unit_costs: list[Decimal] = field(default_factory=list)
    minted_units: int = 0
    ledger: str = "LQD"
    decimals: int = 6
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall_seconds: float = 0.0

    @property
    def throughput_per_hour(self) -> float:
        return 3600 * self.units_built / self.simulated_seconds if self.simulated_seconds else 0.0

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.wall_seconds if self.wall_seconds else 0.0

    def lead_time_hours(self, q: float) -> float:
        return float(np.quantile(self.lead_times, q)) / 3600 if self.lead_times else 0.0

    def tokens(self, units: int) -> str:
        return money_text(Decimal(units).scaleb(-self.decimals))

    def stage_shares(self) -> dict[str, float]:
        total = sum(self.stages.values()) or 1.0
        return {k: v / total for k, v in self.stages.items()}

    def to_dict(self) -> dict[str, Any]:
        cost = sum(self.unit_costs, Decimal(0)) / len(self.unit_costs) if self.unit_costs else 0
        return {
            "orders": self.orders,
            "units_built": self.units_built,
            "unfinished": len(self.unfinished),
            "reworked": self.reworked,
            "scrapped": self.scrapped,
            "throughput_per_hour": round(self.throughput_per_hour, 3),
            "simulated_hours": round(self.simulated_seconds / 3600, 3),
            "lead_time_p50_hours": round(self.lead_time_hours(0.5), 3),
            "lead_time_p95_hours": round(self.lead_time_hours(0.95), 3),
            "setup_hours": round(self.setup_seconds / 3600, 3),
            "window_violations": self.window_violations,
            "cost_per_unit": money_text(Decimal(cost).quantize(Decimal("0.01"))),
            "escrows_posted": self.escrows_posted,
            "payments_settled": self.tokens(self.escrow_units),
            "prices_delivered": money_text(self.prices_delivered),
            "supply_contracts": self.supply_contracts,
            "supply_paid": self.tokens(self.supply_units),
            "ledger": self.ledger,
            "orders_per_second": round(self.orders_per_second, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stages.items()},
        }

    def text(self) -> list[str]:
        d = self.to_dict()
        shares = self.stage_shares()
        slowest = max(shares, key=lambda k: shares[k])
        lines = [
            f"orders {d['orders']}, units built {d['units_built']}, unfinished "
            f"{d['unfinished']}, reworked {d['reworked']}, scrapped {d['scrapped']}",
            f"throughput {d['throughput_per_hour']:.2f} units/h over {d['simulated_hours']:.1f} "
            f"simulated hours; setups {d['setup_hours']:.1f} h; ratio-window violations "
            f"{d['window_violations']}",
            f"lead time p50 {d['lead_time_p50_hours']:.2f} h, p95 {d['lead_time_p95_hours']:.2f} h",
            f"cost per unit {d['cost_per_unit']} {self.ledger} (parts and station time, mean)",
            f"payments settled: {d['escrows_posted']} escrows posted, {d['payments_settled']} "
            f"{self.ledger} (delivered prices {d['prices_delivered']}); supply "
            f"{d['supply_contracts']} contracts, {d['supply_paid']} {self.ledger} paid",
            f"wall {d['wall_seconds']:.1f} s, {d['orders_per_second']:.1f} orders/s; slowest "
            f"stage {slowest} ({shares[slowest]:.0%})",
            "stages: "
            + ", ".join(f"{k} {v:.1f} s ({shares[k]:.0%})" for k, v in self.stages.items()),
        ]
        return lines
