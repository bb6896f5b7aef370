"""Fleet: devices as served nodes. The node's TUF repository of device software
(``repository``, ``tuf_keys``, ``service``), the registry and twins (``registry``),
director assignments (``director``), rollouts with groups, modes and windows
(``rollouts``, ``groups``, ``windows``), entitlements (``entitlements``), the device poll
(``poll``), the MQTT device API (``mqtt_bridge``, ``mqtt_link``), the device agent
(``agent``) and the fleet simulation (``simulate``)."""

from liquidfab.fleet.agent import Agent, AgentState, PowerLoss, load_state, provision
from liquidfab.fleet.director import AssignmentRefused, sign_assignment, verify_assignment
from liquidfab.fleet.entitlements import LicenseRefused, enabled_features, verify_licenses
from liquidfab.fleet.mqtt_bridge import MqttBridge
from liquidfab.fleet.mqtt_link import MqttLink
from liquidfab.fleet.poll import PollBoard
from liquidfab.fleet.repository import (
    EXPIRY,
    KINDS,
    FleetRepository,
    RepositoryKeys,
    TargetInfo,
)
from liquidfab.fleet.simulate import Faults, SimulationReport, SimulationSettings, simulate
from liquidfab.fleet.tuf_keys import KeySigner, tuf_key
from liquidfab.fleet.windows import in_window, window_problem

__all__ = [
    "EXPIRY",
    "KINDS",
    "Agent",
    "AgentState",
    "AssignmentRefused",
    "Faults",
    "FleetRepository",
    "KeySigner",
    "LicenseRefused",
    "MqttBridge",
    "MqttLink",
    "PollBoard",
    "PowerLoss",
    "RepositoryKeys",
    "SimulationReport",
    "SimulationSettings",
    "TargetInfo",
    "enabled_features",
    "in_window",
    "load_state",
    "provision",
    "sign_assignment",
    "simulate",
    "tuf_key",
    "verify_assignment",
    "verify_licenses",
    "window_problem",
]
