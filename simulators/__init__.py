"""Protocol-faithful instrument simulators and the simulated world they observe.

A simulator is a :class:`~labctl.simulators.base.ProtocolHandler`: bytes in,
bytes out, over a shared :class:`~labctl.simulators.world.World`. Transports
(in-process adapters, loopback TCP) live in :mod:`labctl.simulators.transport`.
"""
