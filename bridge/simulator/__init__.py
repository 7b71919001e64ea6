"""An ICWS server simulator (aiohttp) with a scriptable world, fault injection and a control API.

It implements docs/icws-protocol.md on its own and must never import from `bridge` outside this
package, so that a misreading of the protocol cannot hide on both sides of a test.
"""

from .config import SimulatorConfig, users_named
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig", "users_named"]
