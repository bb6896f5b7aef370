"""The node: the FastAPI app, its pages and the wiring to the database."""

from liquidfab.node.app import create_app
from liquidfab.node.core import Node, build_registry
from liquidfab.node.world import World, load_world, open_world_node

__all__ = ["Node", "World", "build_registry", "create_app", "load_world", "open_world_node"]
