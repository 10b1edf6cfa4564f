"""A lost link (instrument powered off, server gone) gives a CommunicationError naming the
instrument and what was being done, for every driver over TCP."""

import pytest

from labctl.errors import CommunicationError
from labctl.simulators.transport import SimServer

pytestmark = pytest.mark.tcp

CASES = {
    "sr830": ("labctl.simulators.sr830:SR830Simulator", {}, lambda inst: inst.read_xy()),
    "eurotherm2408": (
        "labctl.simulators.eurotherm:Eurotherm2408Simulator",
        {"max_setpoint_c": 400.0, "max_ramp_c_per_min": 20.0, "retries": 1},
        lambda inst: inst.temperature_c,
    ),
    "pm100": ("labctl.simulators.pm100:PM100Simulator", {}, lambda inst: inst.power_w),
    "esp301": (
        "labctl.simulators.esp301:ESP301Simulator",
        {"axes": {"sampling": {"axis": 1, "zero_mm": 50.0}}},
        lambda inst: inst.sampling.delay_ps,
    ),
    "ocean_spectrometer": (
        "labctl.simulators.spectrometer:SpectrometerSimulator",
        {},
        lambda inst: inst.acquire(0.01),
    ),
}


def visa_resource(inst):
    """The pyvisa resource under a VISA driver (None for the serial and USB ones)."""
    instrument = getattr(inst, "controller", inst)  # the ESP301 stage set: its controller
    return getattr(getattr(instrument, "adapter", None), "connection", None)


@pytest.mark.parametrize("model", sorted(CASES))
def test_lost_link_is_a_clear_communication_error(model, world):
    from labctl.registry import load
    from labctl.registry import model as model_entry

    sim_ref, options, query = CASES[model]
    server = SimServer(load(sim_ref)(world, name=model)).start()
    inst = load(model_entry(model).driver)(
        server.resource, name=f"bench-{model}", clock=world.clock, **options
    )
    try:
        query(inst)  # works while the instrument is there
        resource = visa_resource(inst)
        if resource is not None:
            # pyvisa-py reads a closed socket until its timeout (2 s for SOCKET
            # resources, spinning a core), so the lost link shows only then: 0.3 s will do
            resource.timeout = 300  # ms
        server.stop()  # the instrument goes away
        with pytest.raises(CommunicationError) as err:
            query(inst)
        assert f"bench-{model}" in str(err.value)
    finally:
        server.stop()
        closer = getattr(inst, "shutdown", None) or getattr(inst, "close", None)
        try:
            closer()
        except Exception:
            pass
