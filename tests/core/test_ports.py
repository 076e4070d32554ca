import socket

from picojepa.core.ports import free_port, free_ports


def test_free_ports_are_distinct_bindable_and_avoid_the_ones_taken():
    first = free_ports(8)
    assert len(set(first)) == 8
    again = free_ports(8, taken=set(first))
    assert not set(again) & set(first) and len(set(again)) == 8
    with socket.socket() as s:  # the port is free: a server can listen on it
        s.bind(("127.0.0.1", free_port()))
        s.listen()


def test_a_port_something_listens_on_is_never_handed_out():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert busy.getsockname()[1] not in free_ports(64)
