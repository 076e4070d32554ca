"""Free loopback ports for the servers this project starts itself (NATS, FFmpeg stream servers,
the status page in tests): the one place that asks the OS for them."""
import socket


def free_ports(n: int = 1, taken: frozenset[int] | set[int] = frozenset()) -> list[int]:
    """N free TCP ports on 127.0.0.1, all different and none of `taken`. Each is held open until
    all are chosen, so the OS cannot hand the same port out twice within one call; another
    process may still take one before the caller binds it, which callers that start a server
    detect by waiting for *their* server to listen."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port not in taken:
                ports.append(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def free_port() -> int:
    """One free TCP port on 127.0.0.1 (see `free_ports`)."""
    return free_ports(1)[0]
