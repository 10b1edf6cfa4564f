"""In-process and TCP transports, against a small echo-like text handler."""

import socket
import threading

import pytest
import pyvisa
import serial
from pymeasure.instruments import Instrument

from labctl.errors import CommunicationError
from labctl.locking import SerializedIO
from labctl.simulators.base import ProtocolHandler, TextProtocolHandler
from labctl.simulators.transport import SimAdapter, SimSerial, SimServer
from labctl.transport import visa_options


class Parrot(TextProtocolHandler):
    """Answers 'ECHO x' with 'x', 'BOOM' raises internally, anything else is silent."""

    def handle_line(self, line):
        if line == "BOOM":
            raise RuntimeError("internal fault")
        if line.startswith("ECHO "):
            return line[5:]
        return None


class Reverser(ProtocolHandler):
    kind = "serial"

    def handle(self, data, source=None):
        return data[::-1]


class ParrotInstrument(SerializedIO, Instrument):
    identity_query = "ECHO parrot-in-step"  # the parrot's only reply it can be sure of
    identity_pattern = r"^parrot-in-step$"

    def __init__(self, adapter, **kwargs):
        super().__init__(adapter, "parrot", includeSCPI=False, **kwargs)


def test_text_handler_reassembles_fragments_and_accepts_crlf():
    h = Parrot(world=None, name="p")
    assert h.handle(b"ECH") == b""
    assert h.handle(b"O a\r") == b"a\n"
    assert h.handle(b"\nECHO b\r\nECHO c\n") == b"b\nc\n"


def test_text_handler_survives_internal_error_and_garbage():
    h = Parrot(world=None, name="p")
    assert h.handle(b"BOOM\n") == b""
    assert h.handle(bytes(range(256)) + b"\n") == b""
    assert h.handle(b"ECHO still alive\n") == b"still alive\n"


def test_sim_adapter_roundtrip_and_silence_times_out_like_visa():
    adapter = SimAdapter(Parrot(world=None, name="parrot"))
    inst = ParrotInstrument(adapter)
    assert inst.ask("ECHO 42") == "42"
    assert inst.values("ECHO 1.5,2.5") == [1.5, 2.5]
    adapter.write("SILENT")
    with pytest.raises(pyvisa.errors.VisaIOError) as err:  # the adapter behaves like VISA
        adapter.read()
    assert "parrot" in str(err.value)
    assert err.value.error_code == pyvisa.constants.StatusCode.error_timeout


def test_serialized_io_names_the_instrument_and_command_on_silence():
    inst = ParrotInstrument(SimAdapter(Parrot(world=None, name="parrot")))
    with pytest.raises(CommunicationError, match=r"parrot: no reply to 'SILENT'"):
        inst.ask("SILENT")
    assert inst.ask("ECHO still there") == "still there"


def test_serialized_io_keeps_query_pairs_together():
    inst = ParrotInstrument(SimAdapter(Parrot(world=None, name="parrot")))
    errors = []

    def worker(tag):
        for i in range(300):
            got = inst.ask(f"ECHO {tag}{i}")
            if got != f"{tag}{i}":
                errors.append((tag, i, got))

    threads = [threading.Thread(target=worker, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_sim_serial_passes_bytes():
    port = SimSerial(Reverser(world=None, name="rev"))
    port.write(b"\x01\x02\x03")
    assert port.in_waiting == 3
    assert port.read(2) == b"\x03\x02"
    assert port.read(10) == b"\x01"
    assert port.read(10) == b""
    port.close()
    with pytest.raises(OSError, match="closed"):
        port.write(b"x")


@pytest.mark.tcp
def test_sim_server_serves_visa_socket_resource():
    with SimServer(Parrot(world=None, name="parrot")) as server:
        assert server.resource.startswith("TCPIP0::127.0.0.1::")
        rm = pyvisa.ResourceManager("@py")
        res = rm.open_resource(server.resource, **visa_options(server.resource))
        try:
            assert res.query("ECHO hello") == "hello"
            res.write_termination = "\r\n"  # accepted as a terminator too
            assert res.query("ECHO crlf") == "crlf"
        finally:
            res.close()
            rm.close()


@pytest.mark.tcp
def test_sim_server_serves_serial_url_with_nodelay():
    with SimServer(Reverser(world=None, name="rev")) as server:
        assert server.resource.startswith("socket://127.0.0.1:")
        port = serial.serial_for_url(server.resource, timeout=1.0)
        try:
            port.write(b"abc")
            assert port.read(3) == b"cba"
        finally:
            port.close()


def test_sim_server_refuses_non_loopback():
    with pytest.raises(ValueError, match="loopback"):
        SimServer(Parrot(world=None), host="0.0.0.0")


@pytest.mark.tcp
def test_sim_server_survives_client_disconnect_mid_message():
    with SimServer(Parrot(world=None, name="parrot")) as server:
        s = socket.create_connection((server.host, server.port), timeout=2)
        s.sendall(b"ECHO half-")
        s.close()
        s = socket.create_connection((server.host, server.port), timeout=2)
        s.sendall(b"ECHO whole\n")
        assert s.recv(100) == b"whole\n"  # the half message was forgotten
        s.close()


@pytest.mark.tcp
def test_two_clients_of_one_served_instrument_never_splice_commands():
    with SimServer(Parrot(world=None, name="parrot")) as server:
        a = socket.create_connection((server.host, server.port), timeout=2)
        b = socket.create_connection((server.host, server.port), timeout=2)
        a.sendall(b"ECHO from-")
        b.sendall(b"ECHO b\n")
        assert b.recv(100) == b"b\n"
        a.sendall(b"a\n")
        assert a.recv(100) == b"from-a\n"
        a.close()
        b.close()
